"""Voter keys hide voter ids; vote ids are stable across a client's retries."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from voting.config import SecuritySettings
from voting.errors import ConfigError
from voting.identity import (
    DEVELOPMENT_SECRET,
    POLL_ID,
    REQUEST_ID,
    VOTE_ID,
    VoterKeys,
    stable_id,
    vote_id_for,
)

pytestmark = pytest.mark.unit

_HEX32 = re.compile(r"[0-9a-f]{32}")

voter_ids = st.text(max_size=200)
secrets = st.binary(min_size=1, max_size=64)
poll_ids = st.from_regex(POLL_ID, fullmatch=True)
request_ids = st.from_regex(REQUEST_ID, fullmatch=True)
voter_keys = st.from_regex(_HEX32, fullmatch=True)

_PROPERTY = settings(max_examples=150, deadline=None)


@_PROPERTY
@given(secret=secrets, voter_id=voter_ids)
def test_a_voter_key_is_32_hex_chars_and_deterministic(secret: bytes, voter_id: str) -> None:
    key = VoterKeys(secret).key(voter_id)

    assert _HEX32.fullmatch(key)
    assert VoterKeys(secret).key(voter_id) == key


@_PROPERTY
@given(secret=secrets, voter_ids=st.lists(voter_ids, min_size=1, max_size=5))
def test_one_voter_keys_object_gives_the_same_key_whatever_came_before(
    secret: bytes, voter_ids: list[str]
) -> None:
    keys = VoterKeys(secret)
    first = [keys.key(v) for v in voter_ids]

    assert [keys.key(v) for v in reversed(voter_ids)] == first[::-1]


@_PROPERTY
@given(secret=secrets, a=voter_ids, b=voter_ids)
def test_different_voter_ids_get_different_keys(secret: bytes, a: str, b: str) -> None:
    assume(a != b)

    assert VoterKeys(secret).key(a) != VoterKeys(secret).key(b)


@_PROPERTY
@given(a=secrets, b=secrets, voter_id=voter_ids)
def test_different_secrets_give_different_keys(a: bytes, b: bytes, voter_id: str) -> None:
    assume(a != b)

    assert VoterKeys(a).key(voter_id) != VoterKeys(b).key(voter_id)


def test_a_voter_key_does_not_contain_the_voter_id() -> None:
    key = VoterKeys(b"secret").key("alice")

    assert "alice" not in key
    assert key != VoterKeys(b"").key("alice")


def test_production_refuses_an_empty_secret() -> None:
    with pytest.raises(ConfigError, match="VOTING_VOTER_KEY_SECRET"):
        VoterKeys.from_settings(SecuritySettings(environment="production", voter_key_secret=""))


def test_production_uses_the_configured_secret() -> None:
    keys = VoterKeys.from_settings(
        SecuritySettings(environment="production", voter_key_secret="s3cret")
    )

    assert keys.key("alice") == VoterKeys(b"s3cret").key("alice")
    assert keys.key("alice") != VoterKeys(DEVELOPMENT_SECRET.encode()).key("alice")


def test_development_without_a_secret_uses_the_development_secret() -> None:
    keys = VoterKeys.from_settings(SecuritySettings(environment="development"))

    assert keys.key("alice") == VoterKeys(DEVELOPMENT_SECRET.encode()).key("alice")


def test_development_with_a_secret_uses_it() -> None:
    keys = VoterKeys.from_settings(
        SecuritySettings(environment="development", voter_key_secret="mine")
    )

    assert keys.key("alice") == VoterKeys(b"mine").key("alice")


def _assert_rfc_uuid(text: str, version: int) -> None:
    parsed = uuid.UUID(text)
    assert str(parsed) == text
    assert VOTE_ID.fullmatch(text)
    assert parsed.variant == uuid.RFC_4122
    assert parsed.version == version


@_PROPERTY
@given(poll_id=poll_ids, voter_key=voter_keys, request_id=request_ids)
def test_a_vote_id_is_a_stable_version_8_uuid(
    poll_id: str, voter_key: str, request_id: str
) -> None:
    vote_id = vote_id_for(poll_id, voter_key, request_id)

    _assert_rfc_uuid(vote_id, 8)
    assert vote_id_for(poll_id, voter_key, request_id) == vote_id


@_PROPERTY
@given(
    first=st.tuples(poll_ids, voter_keys, request_ids),
    second=st.tuples(poll_ids, voter_keys, request_ids),
)
def test_vote_ids_differ_when_any_part_differs(
    first: tuple[str, str, str], second: tuple[str, str, str]
) -> None:
    assume(first != second)

    assert vote_id_for(*first) != vote_id_for(*second)


@_PROPERTY
@given(poll_id=poll_ids, voter_key=voter_keys, request_id=request_ids, other=request_ids)
def test_changing_only_one_part_changes_the_vote_id(
    poll_id: str, voter_key: str, request_id: str, other: str
) -> None:
    parts = (poll_id, voter_key, request_id)
    base = vote_id_for(*parts)

    for index, part in enumerate(parts):
        if part != other:
            changed = list(parts)
            changed[index] = other
            assert vote_id_for(*changed) != base, index


def test_a_vote_id_is_not_a_plain_concatenation() -> None:
    # The parts are separated, so moving text between neighbours changes the id.
    assert vote_id_for("ab", "c", "r") != vote_id_for("a", "bc", "r")
    assert vote_id_for("p", "k", "r1") != vote_id_for("p", "kr", "1")


def test_without_a_request_id_every_vote_id_is_fresh() -> None:
    ids = [vote_id_for("poll", "0" * 32, "") for _ in range(50)]

    assert len(set(ids)) == 50
    for vote_id in ids:
        _assert_rfc_uuid(vote_id, 4)


def test_stable_ids_depend_on_their_kind() -> None:
    assert stable_id("vote", "p", "k", "r") == vote_id_for("p", "k", "r")
    assert stable_id("decision", "p", "k", "r") != vote_id_for("p", "k", "r")
    _assert_rfc_uuid(stable_id("poll-created", "p"), 8)


@given(st.lists(st.text(max_size=20), min_size=1, max_size=4))
def test_a_stable_id_is_the_uuid_of_its_digest_with_version_8(parts: list[str]) -> None:
    made = stable_id(*parts)
    parsed = uuid.UUID(made)
    assert str(parsed) == made
    assert parsed.version == 8
    assert parsed.variant == uuid.RFC_4122
    assert stable_id(*parts) == made
