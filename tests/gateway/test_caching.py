"""Results an edge can cache: an ETag per version, 304 for the version the client holds,
and Cache-Control that lets a CDN serve open polls briefly and final ones for a day."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.api import matches, results_cache_control, results_etag
from tests.gateway.sse import cast, close, poll_in_read_model
from tests.gateway.test_api import get
from tests.harness import Deployment, wait_until
from voting.v1 import results_pb2


@pytest.mark.unit
def test_the_tag_changes_with_the_version_and_with_finality_only() -> None:
    open_3 = results_pb2.Results(poll_id="p", version=3, total=5)
    later = results_pb2.Results(poll_id="p", version=3, total=5)
    later.staleness.FromMilliseconds(900)  # measured at each read: the same version
    assert results_etag(open_3) == results_etag(later) == 'W/"p-3"'
    assert results_etag(results_pb2.Results(poll_id="p", version=4)) == 'W/"p-4"'
    assert results_etag(results_pb2.Results(poll_id="p", version=4, final=True)) == 'W/"p-4-final"'


@pytest.mark.unit
def test_final_results_are_cacheable_for_a_day_and_open_ones_briefly() -> None:
    final = results_pb2.Results(poll_id="p", version=9, final=True)
    live = results_pb2.Results(poll_id="p", version=9)
    assert results_cache_control(final, private=False, max_age_s=1) == (
        "public, max-age=86400, immutable"
    )
    assert results_cache_control(live, private=False, max_age_s=1) == (
        "public, max-age=1, must-revalidate"
    )
    # Read with the browser's own token: no shared cache may keep it.
    assert results_cache_control(live, private=True, max_age_s=1).startswith("private,")


@pytest.mark.unit
@given(
    st.lists(st.text(alphabet="abc-0123456789", min_size=1, max_size=8), max_size=4),
    st.booleans(),
)
def test_if_none_match_compares_weakly_against_every_listed_tag(
    others: list[str], weak_request: bool
) -> None:
    etag = 'W/"p-7"'
    listed = [f'"{o}"' for o in others if o != "p-7"]
    assert not matches(", ".join(listed) or None, etag)
    held = 'W/"p-7"' if weak_request else '"p-7"'
    assert matches(", ".join([*listed, held]), etag)
    assert matches("*", etag)
    assert not matches("", etag)


def test_a_client_holding_the_current_version_gets_304_until_it_changes(
    running: Deployment,
) -> None:
    poll_id = poll_in_read_model(running)
    path = f"/api/polls/{poll_id}/results"
    status, headers, body = get(running, path)
    assert status == 200
    first = headers["ETag"]
    assert headers["Cache-Control"] == "public, max-age=1, must-revalidate"

    # The read model may still bump the new poll's version (its creation is applied in
    # steps): what must hold is that the tag a client holds, while current, gets 304.
    def held_is_not_modified() -> bool:
        nonlocal first
        first = get(running, path)[1]["ETag"]
        status, headers, body = get(running, path, **{"If-None-Match": first})
        return (status, body, headers["ETag"]) == (304, b"", first)

    wait_until(held_is_not_modified, timeout_s=10, what="304 for the current version")

    cast(running, poll_id, {"a": 2})

    def total_is_two(body: bytes) -> bool:
        return b'"total": "2"' in body or b'"total":"2"' in body

    # The two votes may be projected in two versions: wait for the one that holds both.
    wait_until(lambda: total_is_two(get(running, path)[2]), timeout_s=30, what="both votes")
    status, headers, body = get(running, path, **{"If-None-Match": first})
    assert status == 200
    assert headers["ETag"] != first
    assert total_is_two(body)

    close(running, poll_id)
    wait_until(
        lambda: get(running, path)[1]["ETag"].endswith('-final"'), timeout_s=60, what="FINAL"
    )
    status, headers, _ = get(running, path)
    assert headers["Cache-Control"] == "public, max-age=86400, immutable"
    status, _, body = get(running, path, **{"If-None-Match": headers["ETag"]})
    assert (status, body) == (304, b"")
