"""The chaos checker finds each kind of broken promise, and nothing in a run that kept
them all (no processes: a small world built by hand)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from devkit.bench.checker import Observed, check
from devkit.bench.load import Attempt, RequestHistory
from voting import events
from voting.events import header_items
from voting.identity import DEVELOPMENT_SECRET, VoterKeys, vote_id_for
from voting.kafka import LogRecord
from voting.v1 import events_pb2, results_pb2, vote_pb2

pytestmark = pytest.mark.unit

KEYS = VoterKeys(DEVELOPMENT_SECRET.encode())
POLL = "p"
OPTIONS = ("a", "b")


@dataclass
class World:
    """A run of two voters, one voting twice, all as the system should have handled it."""

    requests: dict[str, RequestHistory] = field(default_factory=dict)
    votes: list[LogRecord] = field(default_factory=list)
    decisions: list[LogRecord] = field(default_factory=list)
    ledger: list[dict[str, Any]] = field(default_factory=list)
    statuses: dict[str, tuple[int, int, str] | None] = field(default_factory=dict)
    final: results_pb2.Results = field(default_factory=results_pb2.Results)

    def vote(self, request_id: str, voter: str, option: str, *, at: float, accepted: bool) -> str:
        key = KEYS.key(voter)
        vote_id = vote_id_for(POLL, key, request_id)
        offset = len(self.votes)
        self.requests[request_id] = RequestHistory(
            request_id, POLL, voter, option, [Attempt(at, at + 0.01, 0, "OK", vote_id, 0, offset)]
        )
        self._append_vote(vote_id, key, option)
        if accepted:
            decision: events_pb2.VoteAccepted | events_pb2.VoteRejected = events_pb2.VoteAccepted(
                vote_id=vote_id, poll_id=POLL, option_id=option
            )
            self.ledger.append(
                {
                    "poll_id": {"S": POLL},
                    "voter_key": {"S": key},
                    "vote_id": {"S": vote_id},
                    "option_id": {"S": option},
                }
            )
            self.statuses[vote_id] = (vote_pb2.VOTE_STATE_ACCEPTED, 0, option)
        else:
            decision = events_pb2.VoteRejected(
                vote_id=vote_id, poll_id=POLL, reason=vote_pb2.REJECT_REASON_DUPLICATE
            )
            self.statuses[vote_id] = (
                vote_pb2.VOTE_STATE_REJECTED,
                vote_pb2.REJECT_REASON_DUPLICATE,
                "",
            )
        self.decide(decision)
        return vote_id

    def _append_vote(self, vote_id: str, key: str, option: str) -> None:
        value, headers = events.encode(
            events_pb2.VoteCast(vote_id=vote_id, poll_id=POLL, voter_key=key, option_id=option)
        )
        self.votes.append(
            LogRecord("votes", 0, len(self.votes), None, value, header_items(headers))
        )

    def decide(self, decision: events_pb2.VoteAccepted | events_pb2.VoteRejected) -> None:
        value, headers = events.encode(decision)
        self.decisions.append(
            LogRecord("vote-results", 0, len(self.decisions), None, value, header_items(headers))
        )

    def close(self) -> None:
        value, headers = events.encode(events_pb2.PollClosed(poll_id=POLL, partition=0))
        self.votes.append(
            LogRecord("votes", 0, len(self.votes), None, value, header_items(headers))
        )

    def finalize(self) -> None:
        counts = dict.fromkeys(OPTIONS, 0)
        for item in self.ledger:
            counts[item["option_id"]["S"]] += 1
        self.final = results_pb2.Results(poll_id=POLL, final=True)
        for option, votes in counts.items():
            self.final.counts.add(option_id=option, votes=votes)
            self.final.recount.live_counts.add(option_id=option, votes=votes)

    def observed(self) -> Observed:
        return Observed(
            requests=self.requests,
            voter_keys=KEYS,
            votes_log=self.votes,
            decisions_log=self.decisions,
            ledger=self.ledger,
            finals={POLL: self.final},
            options=OPTIONS,
            statuses=self.statuses,
        )


def world() -> World:
    w = World()
    w.vote("r1", "ada", "a", at=1.0, accepted=True)
    w.vote("r2", "bob", "b", at=1.1, accepted=True)
    w.vote("r3", "ada", "b", at=2.0, accepted=False)  # ada again: a duplicate
    w.close()
    w.finalize()
    return w


def test_a_run_that_kept_every_promise_has_no_violation() -> None:
    verdict = check(world().observed())
    assert verdict.ok, verdict.violations
    assert verdict.figures["lost"] == 0
    assert verdict.figures["live_matches_final"]
    assert verdict.figures["status_matches_final"]
    assert verdict.figures["truth_counts"] == {POLL: {"a": 1, "b": 1}}


def _lose_a_decision(w: World) -> None:
    w.decisions.pop(0)


def _forget_an_append(w: World) -> None:
    w.votes.pop(1)


def _change_an_option_in_dynamodb(w: World) -> None:
    w.ledger[0]["option_id"] = {"S": "b"}


def _keep_the_later_vote(w: World) -> None:
    duplicate = w.requests["r3"].attempts[0].vote_id
    w.ledger[0]["vote_id"] = {"S": duplicate}
    w.ledger[0]["option_id"] = {"S": "b"}


def _decide_twice(w: World) -> None:
    vote_id = w.requests["r1"].attempts[0].vote_id
    w.decide(
        events_pb2.VoteRejected(vote_id=vote_id, poll_id=POLL, reason=vote_pb2.REJECT_REASON_CLOSED)
    )


def _over_count_live(w: World) -> None:
    w.final.recount.live_counts[0].votes += 1


def _under_count_live(w: World) -> None:
    w.final.recount.live_counts[1].votes -= 1


def _miscount_final(w: World) -> None:
    w.final.counts[0].votes += 1


def _flip_a_status(w: World) -> None:
    vote_id = w.requests["r1"].attempts[0].vote_id
    w.statuses[vote_id] = (vote_pb2.VOTE_STATE_REJECTED, vote_pb2.REJECT_REASON_CLOSED, "")


def _append_a_refused_vote(w: World) -> None:
    key = KEYS.key("cy")
    vote_id = vote_id_for(POLL, key, "r4")
    w.requests["r4"] = RequestHistory(
        "r4", POLL, "cy", "a", [Attempt(3.0, 3.1, 0, "FAILED_PRECONDITION")]
    )
    w._append_vote(vote_id, key, "a")


def _change_the_vote_id_on_retry(w: World) -> None:
    w.requests["r2"].attempts.append(Attempt(5.0, 5.1, 1, "OK", "another-vote-id", 0, 99))


BREAKS: dict[str, tuple[Callable[[World], None], str]] = {
    "a decision lost": (_lose_a_decision, "lost"),
    "an acknowledged vote missing from the log": (_forget_an_append, "lost"),
    "an option changed in DynamoDB": (_change_an_option_in_dynamodb, "wrong_vote_kept"),
    "the later vote kept": (_keep_the_later_vote, "wrong_vote_kept"),
    "a vote decided twice": (_decide_twice, "conflicting_decisions"),
    "the live count over": (_over_count_live, "live_differs"),
    "the live count under": (_under_count_live, "live_differs"),
    "FINAL miscounted": (_miscount_final, "final_over_truth"),
    "a status contradicting FINAL": (_flip_a_status, "status_differs"),
    "a refused vote appended": (_append_a_refused_vote, "refused_appended"),
    "a retry answered with another vote id": (
        _change_the_vote_id_on_retry,
        "retry_changed_vote_id",
    ),
}


@pytest.mark.parametrize("case", BREAKS)
def test_each_broken_promise_is_a_violation_with_examples(case: str) -> None:
    w = world()
    breaks, rule = BREAKS[case]
    breaks(w)
    verdict = check(w.observed())
    assert not verdict.ok
    assert rule in verdict.violations, verdict.violations
    assert verdict.violations[rule]["examples"]


def test_an_unknown_outcome_is_resolved_from_the_log_not_guessed() -> None:
    """A request that only ever timed out, whose vote was appended first, is the one that
    counts: no violation, and it is reported as such."""
    w = World()
    key = KEYS.key("dee")
    first = vote_id_for(POLL, key, "t1")
    w.requests["t1"] = RequestHistory(
        "t1", POLL, "dee", "a", [Attempt(1.0, 1.005, 0, "DEADLINE_EXCEEDED")]
    )
    w._append_vote(first, key, "a")
    w.decide(events_pb2.VoteAccepted(vote_id=first, poll_id=POLL, option_id="a"))
    w.ledger.append(
        {
            "poll_id": {"S": POLL},
            "voter_key": {"S": key},
            "vote_id": {"S": first},
            "option_id": {"S": "a"},
        }
    )
    w.vote("t2", "dee", "b", at=2.0, accepted=False)
    w.close()
    w.finalize()
    verdict = check(w.observed())
    assert verdict.ok, verdict.violations
    assert verdict.figures["unknown_appended"] == 1
