"""Inputs a careless or hostile client sends: ids that look alike but differ, enum values
the contract does not know, a request id reused with other content. Each is refused with
a clear status and changes nothing (on the in-memory ports: no process started)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from command_svc import validation
from command_svc.errors import InvalidCommand, RequestIdReused
from tests.command_svc.sides import CALLER, cast, create, run, side, vote
from voting.errors import ServiceError
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import poll_pb2

pytestmark = pytest.mark.unit

FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


@pytest.mark.parametrize(
    "voter",
    [
        "ada\u202eevil",  # right-to-left override: reads as another id
        "a\u200bda",  # zero-width space: looks like "ada"
        "   ",
        " ada",
        "ada\t",
        "e\u0301",  # not NFC: "é" spelled as e + combining accent
        "ada\u2028",  # line separator
        "\ue000",  # private use
    ],
)
def test_voter_ids_that_hide_or_fake_what_they_say_are_refused(voter: str) -> None:
    async def case() -> None:
        s = side()
        await create(s)
        (outcome,) = await cast(s, vote(voter=voter))
        assert isinstance(outcome, InvalidCommand)
        assert [f for f, _ in outcome.violations] == ["voter_id"]
        assert s.log.appended() == []

    run(case)


@pytest.mark.parametrize("voter", ["Ada Lovelace", "José", "李雷", "ada@example.org", "x" * 128])
def test_voter_ids_of_plain_printable_text_are_accepted(voter: str) -> None:
    assert validation.cast_vote(vote(voter=voter)) == []


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=140))
def test_an_accepted_voter_id_is_printable_nfc_text_with_no_format_character(voter: str) -> None:
    out: validation.Violations = []
    validation.voter_id(voter, out)
    if out:
        return
    assert unicodedata.normalize("NFC", voter) == voter
    assert voter.strip() == voter
    assert len(voter) <= validation.MAX_VOTER_ID
    assert not {unicodedata.category(c) for c in voter} & FORBIDDEN_CATEGORIES


def test_an_unknown_visibility_is_refused_not_read_as_public() -> None:
    async def case() -> None:
        s = side()
        request = cmd.CreatePollRequest(
            request_id="r",
            poll_id="lunch",
            title="Lunch?",
            options=[poll_pb2.PollOption(option_id=o, label=o) for o in ("a", "b")],
            visibility=99,  # type: ignore[arg-type]
        )
        with pytest.raises(InvalidCommand) as refused:
            await s.handler.create_poll(request, CALLER)
        assert [f for f, _ in refused.value.violations] == ["visibility"]
        assert s.store.polls == {}

    run(case)


def test_create_poll_with_its_request_id_and_other_content_is_refused() -> None:
    async def case() -> None:
        s = side()
        await create(s)
        await create(s)  # the same request again: its first answer
        changed = cmd.CreatePollRequest(
            request_id="create-lunch",
            poll_id="lunch",
            title="Dinner?",
            options=[poll_pb2.PollOption(option_id=o, label=o) for o in ("a", "b")],
        )
        with pytest.raises(RequestIdReused):
            await s.handler.create_poll(changed, CALLER)
        assert s.store.polls["lunch"].title == "Lunch?"

    run(case)


def test_every_refusal_carries_its_status_with_details() -> None:
    async def case() -> None:
        s = side()
        await create(s)
        (outcome,) = await cast(s, vote(voter="a\u200bda"))
        assert isinstance(outcome, ServiceError)
        rich = outcome.status()
        assert rich.code == 3  # INVALID_ARGUMENT
        assert rich.details

    run(case)
