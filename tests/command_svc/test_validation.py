"""Structural validation never raises: it reports every malformed field, and only those."""

from __future__ import annotations

import unicodedata

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st

from command_svc import validation
from voting.identity import OPTION_ID, POLL_ID, REQUEST_ID
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import poll_pb2

pytestmark = pytest.mark.unit

CAST_FIELDS = [f.name for f in cmd.CastVoteRequest.DESCRIPTOR.fields]
NOW = 1_700_000_000
MAX_SECONDS = 253402300799

# Protobuf strings are valid UTF-8, so they never hold lone surrogates (category Cs),
# which hypothesis leaves out of text by default.
any_text = st.one_of(
    st.text(),
    st.text(min_size=60, max_size=70),
    st.text(min_size=1000, max_size=5000),
    st.text(st.characters(codec="ascii"), max_size=80),
    st.text(st.characters(categories=["Cc"]), min_size=1, max_size=5),
    st.sampled_from(["", " ", "a", "A", "-a", "a" * 64, "a" * 65, "x" * 128, "x" * 129]),
)
poll_ids = st.from_regex(POLL_ID, fullmatch=True)
option_ids = st.from_regex(OPTION_ID, fullmatch=True)
request_ids = st.from_regex(REQUEST_ID, fullmatch=True)
voter_ids = st.text(st.characters(exclude_categories=["C", "Z"]), min_size=1, max_size=128).filter(
    lambda v: unicodedata.normalize("NFC", v) == v
)

cast_requests = st.builds(
    cmd.CastVoteRequest,
    request_id=any_text,
    poll_id=any_text,
    voter_id=any_text,
    option_id=any_text,
)
valid_cast_requests = st.builds(
    cmd.CastVoteRequest,
    request_id=st.one_of(st.just(""), request_ids),
    poll_id=poll_ids,
    voter_id=voter_ids,
    option_id=option_ids,
)


def _bad_voter(text: str) -> bool:
    """Printable NFC text: no C* category, no line or paragraph separator, no edge space."""
    return (
        not 1 <= len(text) <= 128
        or text != text.strip()
        or unicodedata.normalize("NFC", text) != text
        or any(
            unicodedata.category(c)[0] == "C" or unicodedata.category(c) in {"Zl", "Zp"}
            for c in text
        )
    )


def _expected_invalid(request: cmd.CastVoteRequest) -> set[str]:
    """An independent statement of the documented rules."""
    bad = set()
    if request.request_id and not REQUEST_ID.fullmatch(request.request_id):
        bad.add("request_id")
    if not POLL_ID.fullmatch(request.poll_id):
        bad.add("poll_id")
    voter = request.voter_id
    if _bad_voter(voter):
        bad.add("voter_id")
    if not OPTION_ID.fullmatch(request.option_id):
        bad.add("option_id")
    return bad


@settings(max_examples=200, deadline=None)
@given(request=cast_requests)
def test_cast_vote_reports_exactly_the_malformed_fields(request: cmd.CastVoteRequest) -> None:
    violations = validation.cast_vote(request)

    assert isinstance(violations, list)
    for item in violations:
        assert isinstance(item, tuple)
        field, description = item
        assert field in CAST_FIELDS
        assert isinstance(description, str)
        assert description
    fields = [field for field, _ in violations]
    assert len(fields) == len(set(fields)), "one violation per field"
    assert set(fields) == _expected_invalid(request)


@settings(max_examples=200, deadline=None)
@given(request=valid_cast_requests)
def test_well_formed_votes_have_no_violations(request: cmd.CastVoteRequest) -> None:
    assert validation.cast_vote(request) == []


@settings(max_examples=100, deadline=None)
@given(request=cast_requests, index=st.integers(min_value=0, max_value=999))
def test_a_prefix_is_applied_to_every_field(request: cmd.CastVoteRequest, index: int) -> None:
    prefix = f"requests[{index}]."

    prefixed = validation.cast_vote(request, prefix=prefix)

    assert prefixed == [(prefix + f, d) for f, d in validation.cast_vote(request)]


def test_an_empty_vote_names_each_required_field() -> None:
    assert validation.cast_vote(cmd.CastVoteRequest(), prefix="requests[2].") == [
        ("requests[2].poll_id", "required"),
        ("requests[2].voter_id", "required"),
        ("requests[2].option_id", "required"),
    ]


@pytest.mark.parametrize(
    ("field", "value", "description"),
    [
        ("poll_id", "Best", "1 to 64 characters"),
        ("poll_id", "-best", "starting with a letter or digit"),
        ("poll_id", "a" * 65, "1 to 64 characters"),
        ("option_id", "a" * 33, "1 to 32 characters"),
        ("option_id", "yes!", "[a-z0-9_-]"),
        ("request_id", "r" * 65, "1 to 64 characters"),
        ("request_id", "has space", "[A-Za-z0-9._:-]"),
        ("voter_id", "v" * 129, "1 to 128 characters"),
        ("voter_id", "alice\n", "without control or format characters"),
        ("voter_id", "bob\x00", "without control or format characters"),
        ("voter_id", "carol\x85", "without control or format characters"),
        ("voter_id", "dave\x7f", "without control or format characters"),
    ],
)
def test_each_malformed_field_is_described(field: str, value: str, description: str) -> None:
    request = cmd.CastVoteRequest(
        request_id="req-1", poll_id="best", voter_id="alice", option_id="yes"
    )
    setattr(request, field, value)

    violations = validation.cast_vote(request)

    assert [f for f, _ in violations] == [field]
    assert description in violations[0][1]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("poll_id", "a" * 64),
        ("poll_id", "0_-"),
        ("option_id", "a" * 32),
        ("request_id", "R" * 64),
        ("request_id", "a.b:c_d-E"),
        ("voter_id", "v" * 128),
        ("voter_id", "Zoë Ünïcødé 投票者"),
    ],
)
def test_values_at_the_limits_are_accepted(field: str, value: str) -> None:
    request = cmd.CastVoteRequest(poll_id="best", voter_id="alice", option_id="yes")
    setattr(request, field, value)

    assert validation.cast_vote(request) == []


def _poll(
    *,
    options: int = 2,
    opens_at: Timestamp | None = None,
    closes_at: Timestamp | None = None,
) -> cmd.CreatePollRequest:
    request = cmd.CreatePollRequest(
        request_id="create-1",
        poll_id="best-fruit",
        title="Best fruit?",
        options=[
            poll_pb2.PollOption(option_id=f"o{i}", label=f"Option {i}") for i in range(options)
        ],
    )
    if opens_at is not None:
        request.opens_at.CopyFrom(opens_at)
    if closes_at is not None:
        request.closes_at.CopyFrom(closes_at)
    return request


def test_a_well_formed_poll_has_no_violations() -> None:
    request = _poll(opens_at=Timestamp(seconds=NOW + 10), closes_at=Timestamp(seconds=NOW + 20))

    assert validation.create_poll(request, NOW) == []


@pytest.mark.parametrize("count", [2, 3, 64])
def test_two_to_sixty_four_options_are_accepted(count: int) -> None:
    assert validation.create_poll(_poll(options=count), NOW) == []


@pytest.mark.parametrize("count", [0, 1, 65])
def test_other_numbers_of_options_are_refused(count: int) -> None:
    violations = validation.create_poll(_poll(options=count), NOW)

    assert violations == [("options", "2 to 64 options")]


def test_a_poll_needs_a_request_id_id_and_title() -> None:
    request = _poll()
    request.request_id = ""
    request.poll_id = ""
    request.title = ""

    assert validation.create_poll(request, NOW) == [
        ("request_id", "required"),
        ("poll_id", "required"),
        ("title", "required"),
    ]


def test_title_length_and_control_characters_are_checked() -> None:
    at_limit = _poll()
    at_limit.title = "t" * 300
    too_long = _poll()
    too_long.title = "t" * 301
    control = _poll()
    control.title = "Best\tfruit"

    assert validation.create_poll(at_limit, NOW) == []
    assert validation.create_poll(too_long, NOW) == [("title", "at most 300 characters")]
    assert validation.create_poll(control, NOW) == [
        ("title", "must not contain control characters")
    ]


def test_option_fields_are_checked_by_index() -> None:
    request = _poll(options=3)
    request.options[1].option_id = "Bad Id"
    request.options[2].label = ""

    assert validation.create_poll(request, NOW) == [
        (
            "options[1].option_id",
            "1 to 32 characters of [a-z0-9_-], starting with a letter or digit",
        ),
        ("options[2].label", "required"),
    ]


def test_a_long_label_is_refused() -> None:
    request = _poll()
    request.options[0].label = "l" * 201

    assert validation.create_poll(request, NOW) == [("options[0].label", "at most 200 characters")]


def test_duplicate_option_ids_are_refused_at_each_repeat() -> None:
    request = _poll(options=4)
    request.options[2].option_id = "o0"
    request.options[3].option_id = "o0"

    assert validation.create_poll(request, NOW) == [
        ("options[2].option_id", "duplicate option id"),
        ("options[3].option_id", "duplicate option id"),
    ]


@pytest.mark.parametrize("seconds", [NOW - 1, NOW, 0])
def test_closes_at_must_be_in_the_future(seconds: int) -> None:
    violations = validation.create_poll(_poll(closes_at=Timestamp(seconds=seconds)), NOW)

    assert violations == [("closes_at", "must be in the future")]


def test_closes_at_in_the_future_without_opens_at_is_accepted() -> None:
    assert validation.create_poll(_poll(closes_at=Timestamp(seconds=NOW + 1)), NOW) == []


@pytest.mark.parametrize("closes", [NOW + 100, NOW + 50])
def test_closes_at_must_be_after_opens_at(closes: int) -> None:
    request = _poll(opens_at=Timestamp(seconds=NOW + 100), closes_at=Timestamp(seconds=closes))

    assert validation.create_poll(request, NOW) == [("closes_at", "must be after opens_at")]


def test_opens_at_in_the_past_is_accepted() -> None:
    assert validation.create_poll(_poll(opens_at=Timestamp(seconds=NOW - 3600)), NOW) == []


@pytest.mark.parametrize(
    "stamp",
    [
        Timestamp(seconds=-1),
        Timestamp(seconds=MAX_SECONDS + 1),
        Timestamp(seconds=2**62),
        Timestamp(seconds=NOW + 10, nanos=-1),
        Timestamp(seconds=NOW + 10, nanos=1_000_000_000),
    ],
    ids=["negative", "after-9999", "huge", "negative-nanos", "nanos-overflow"],
)
@pytest.mark.parametrize("name", ["opens_at", "closes_at"])
def test_invalid_timestamps_are_refused(name: str, stamp: Timestamp) -> None:
    request = _poll()
    getattr(request, name).CopyFrom(stamp)

    assert validation.create_poll(request, NOW) == [(name, "not a valid timestamp")]


def test_the_latest_valid_timestamp_is_accepted() -> None:
    request = _poll(closes_at=Timestamp(seconds=MAX_SECONDS, nanos=999_999_999))

    assert validation.create_poll(request, NOW) == []


def test_an_invalid_opens_at_does_not_also_fail_the_ordering_check() -> None:
    request = _poll(opens_at=Timestamp(seconds=-5), closes_at=Timestamp(seconds=NOW + 10))

    assert validation.create_poll(request, NOW) == [("opens_at", "not a valid timestamp")]


def test_a_well_formed_close_has_no_violations() -> None:
    request = cmd.ClosePollRequest(request_id="close-1", poll_id="best-fruit")

    assert validation.close_poll(request) == []


def test_a_close_requires_a_request_id_and_a_poll_id() -> None:
    assert validation.close_poll(cmd.ClosePollRequest()) == [
        ("request_id", "required"),
        ("poll_id", "required"),
    ]


def test_a_close_with_malformed_ids_names_both() -> None:
    request = cmd.ClosePollRequest(request_id="with space", poll_id="Best Fruit")

    assert [f for f, _ in validation.close_poll(request)] == ["request_id", "poll_id"]


@settings(max_examples=100, deadline=None)
@given(request_id=any_text, poll_id=any_text)
def test_close_poll_never_raises_and_names_only_its_fields(request_id: str, poll_id: str) -> None:
    violations = validation.close_poll(cmd.ClosePollRequest(request_id=request_id, poll_id=poll_id))

    fields = {f for f, _ in violations}
    assert fields <= {"request_id", "poll_id"}
    assert ("request_id" in fields) is (REQUEST_ID.fullmatch(request_id) is None)
    assert ("poll_id" in fields) is (POLL_ID.fullmatch(poll_id) is None)
