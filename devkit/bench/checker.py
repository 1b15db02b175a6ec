"""The checker: judges a fault run from its whole recorded history and the stores.

It runs after every poll of the run is FINAL, on what the load recorded (every attempt
of every request: answers, timeouts, refusals) and on what the system holds: the
``votes`` log (what was appended, and each partition's close point), the decisions in
``vote-results``, the DynamoDB ``votes`` table, the FINAL results with their recount
report, and ``GetVoteStatus`` of every acknowledged vote. Unknown outcomes (timeouts,
UNAVAILABLE) are resolved from the log, never guessed.

The truth, per (poll, voter): the voter's first vote in its partition's order that was
appended before the poll's close point there. The rules, each judged on its own:

``lost``                 acknowledged but not in the log, or with no decision, or a truth
                         vote missing from DynamoDB
``conflicting_decisions`` a vote decided two different ways
``wrong_vote_kept``      DynamoDB holds another vote (or option) than the truth, or a
                         vote for a voter with none
``later_vote_won``       the counted vote is not the voter's first: the client was told
                         of another one before this one was even sent
``final_*``              FINAL differs from the truth or from DynamoDB
``live_differs``         the live count the recount compared differs from FINAL
                         (under-counts as well as over-counts)
``status_differs``       GetVoteStatus of an acknowledged vote disagrees with FINAL
``refused_appended``     a request whose answer was a refusal has a vote in the log
``retry_changed_vote_id`` two acknowledgements of one request id named other vote ids
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from devkit.bench.load import RequestHistory
from voting import events
from voting.errors import EventError
from voting.identity import VoterKeys, vote_id_for
from voting.kafka import LogRecord
from voting.v1 import events_pb2, results_pb2, vote_pb2

EXAMPLES = 5


@dataclass
class Observed:
    """Everything the checker judges."""

    requests: dict[str, RequestHistory]
    voter_keys: VoterKeys
    votes_log: list[LogRecord]
    decisions_log: list[LogRecord]
    ledger: list[dict[str, Any]]  # DynamoDB items of the run's polls
    finals: dict[str, results_pb2.Results | None]
    options: tuple[str, ...]
    # vote id -> (state, reason, option) from GetVoteStatus; None where it failed
    statuses: dict[str, tuple[int, int, str] | None] = field(default_factory=dict)


@dataclass
class Verdict:
    figures: dict[str, Any]
    violations: dict[str, dict[str, Any]]

    @property
    def ok(self) -> bool:
        return not self.violations


@dataclass(frozen=True)
class _Appended:
    poll_id: str
    voter_key: str
    vote_id: str
    option_id: str
    partition: int
    offset: int


class _Findings:
    def __init__(self) -> None:
        self.found: dict[str, list[Any]] = defaultdict(list)

    def add(self, rule: str, example: Any) -> None:
        self.found[rule].append(example)

    def count(self, *rules: str) -> int:
        return sum(len(self.found.get(r, [])) for r in rules)

    def report(self) -> dict[str, dict[str, Any]]:
        return {
            rule: {"count": len(examples), "examples": examples[:EXAMPLES]}
            for rule, examples in sorted(self.found.items())
            if examples
        }


def check(observed: Observed) -> Verdict:
    findings = _Findings()
    appended, markers = _read_votes(observed.votes_log, findings)
    decided, where, sources = _read_decisions(observed.decisions_log)
    truth = _truth(appended, markers)
    first_copy: dict[str, _Appended] = {}
    for record in appended:
        first_copy.setdefault(record.vote_id, record)

    polls = set(observed.finals)
    outcomes: Counter[str] = Counter()
    unknown_appended = 0
    request_of_vote: dict[str, RequestHistory] = {}
    for request in observed.requests.values():
        outcome = request.outcome
        outcomes[outcome] += 1
        voter_key = observed.voter_keys.key(request.voter_id)
        vote_id = vote_id_for(request.poll_id, voter_key, request.request_id)
        request_of_vote[vote_id] = request
        acked_ids = {a.vote_id for a in request.attempts if a.code == "OK"}
        if acked_ids - {vote_id}:
            findings.add(
                "retry_changed_vote_id",
                {"request_id": request.request_id, "vote_ids": sorted(acked_ids)},
            )
        copy = first_copy.get(vote_id)
        if copy is not None and copy.option_id != request.option_id:
            findings.add(
                "altered_option",
                {"vote_id": vote_id, "sent": request.option_id, "appended": copy.option_id},
            )
        if outcome == "ack":
            if copy is None:
                findings.add("lost", {"vote_id": vote_id, "why": "acknowledged, not in the log"})
            elif not decided.get(vote_id):
                findings.add(
                    "lost",
                    {
                        "vote_id": vote_id,
                        "why": "in the log, never decided",
                        "vote": [copy.partition, copy.offset],
                        # Which of its neighbours in the partition were decided: one
                        # record skipped, or a whole stretch?
                        "neighbours_decided": {
                            o: o in sources.get(copy.partition, set())
                            for o in range(copy.offset - 3, copy.offset + 4)
                        },
                    },
                )
        elif outcome == "refused" and copy is not None:
            findings.add(
                "refused_appended",
                {
                    "vote_id": vote_id,
                    "request_id": request.request_id,
                    "answers": [a.code for a in request.attempts],
                },
            )
        elif outcome == "unknown" and copy is not None:
            unknown_appended += 1

    for vote_id, seen in decided.items():
        if len(seen) > 1:
            copy = first_copy.get(vote_id)
            findings.add(
                "conflicting_decisions",
                {
                    "vote_id": vote_id,
                    "decisions": sorted(seen),
                    # Where each decision and the vote sit: enough to tell a replay from
                    # the wrong state apart from a record of an aborted transaction.
                    "decision_records": where.get(vote_id, []),
                    "vote": [copy.partition, copy.offset] if copy else None,
                    "close_marker": (markers.get((copy.poll_id, copy.partition)) if copy else None),
                },
            )

    stored: dict[tuple[str, str], tuple[str, str]] = {}
    for item in observed.ledger:
        key = (item["poll_id"]["S"], item["voter_key"]["S"])
        stored[key] = (item["vote_id"]["S"], item["option_id"]["S"])
    wanted = {k: v for k, v in truth.items() if k[0] in polls}
    for key, (vote_id, option_id) in wanted.items():
        held = stored.get(key)
        if held is None:
            findings.add("lost", {"vote_id": vote_id, "why": "counted vote not in DynamoDB"})
        elif held != (vote_id, option_id):
            findings.add(
                "wrong_vote_kept",
                {"voter_key": key[1], "truth": [vote_id, option_id], "dynamodb": list(held)},
            )
    for key, held in stored.items():
        if key not in wanted:
            findings.add("wrong_vote_kept", {"voter_key": key[1], "dynamodb": list(held)})

    _first_wins(observed, truth, request_of_vote, findings)
    final_ok = _finals(observed, wanted, stored, findings)
    live_ok = _live(observed, findings)
    status_ok = _statuses(observed, wanted, findings)

    figures = {
        "requests": dict(outcomes),
        "acknowledged": outcomes["ack"],
        "unknown_appended": unknown_appended,
        "appended_records": len(appended),
        "decision_records": len(observed.decisions_log),
        "voters_counted": len(wanted),
        "lost": findings.count("lost"),
        "double_counted": findings.count("conflicting_decisions", "final_over_truth"),
        "wrong_vote_kept": findings.count("wrong_vote_kept", "later_vote_won", "altered_option"),
        "refused_appended": findings.count("refused_appended"),
        "retry_changed_vote_id": findings.count("retry_changed_vote_id"),
        "final_matches_truth": final_ok,
        "live_matches_final": live_ok,
        "status_matches_final": status_ok,
        "truth_counts": {
            poll_id: _tally(wanted, poll_id, observed.options) for poll_id in sorted(polls)
        },
    }
    return Verdict(figures, findings.report())


def _read_votes(
    log: list[LogRecord], findings: _Findings
) -> tuple[list[_Appended], dict[tuple[str, int], int]]:
    appended: list[_Appended] = []
    markers: dict[tuple[str, int], int] = {}  # (poll, partition) -> first close marker offset
    for record in sorted(log, key=lambda r: (r.partition, r.offset)):
        try:
            event = events.decode(record.value, record.headers)
        except EventError as exc:
            findings.add("undecodable_record", {"offset": record.offset, "error": str(exc)})
            continue
        if isinstance(event, events_pb2.VoteCast):
            appended.append(
                _Appended(
                    event.poll_id,
                    event.voter_key,
                    event.vote_id,
                    event.option_id,
                    record.partition,
                    record.offset,
                )
            )
        elif isinstance(event, events_pb2.PollClosed):
            markers.setdefault((event.poll_id, record.partition), record.offset)
    return appended, markers


def _read_decisions(
    log: list[LogRecord],
) -> tuple[
    dict[str, set[tuple[str, int]]],
    dict[str, list[tuple[str, int, int, int]]],
    dict[int, set[int]],
]:
    """vote id -> the distinct decisions for it, repeats (REPEATED) left out; vote id
    -> (decision, reason, partition, offset) of each of its decision records; and votes
    partition -> the offsets of its records that have a decision."""
    decided: dict[str, set[tuple[str, int]]] = defaultdict(set)
    where: dict[str, list[tuple[str, int, int, int]]] = defaultdict(list)
    sources: dict[int, set[int]] = defaultdict(set)
    for record in log:
        try:
            event = events.decode(record.value, record.headers)
        except EventError:
            continue
        if isinstance(event, events_pb2.VoteAccepted):
            decision = ("accepted", 0)
        elif isinstance(event, events_pb2.VoteRejected):
            decision = ("rejected", int(event.reason))
        else:
            continue
        where[event.vote_id].append((*decision, record.partition, record.offset))
        sources[event.source.partition].add(event.source.offset)
        if decision != ("rejected", vote_pb2.REJECT_REASON_REPEATED):
            decided[event.vote_id].add(decision)
    return decided, where, sources


def _truth(
    appended: list[_Appended], markers: dict[tuple[str, int], int]
) -> dict[tuple[str, str], tuple[str, str]]:
    truth: dict[tuple[str, str], tuple[str, str]] = {}
    for record in appended:  # in partition order
        key = (record.poll_id, record.voter_key)
        if key in truth:
            continue
        closed_at = markers.get((record.poll_id, record.partition))
        if closed_at is not None and record.offset > closed_at:
            continue
        truth[key] = (record.vote_id, record.option_id)
    return truth


def _first_wins(
    observed: Observed,
    truth: dict[tuple[str, str], tuple[str, str]],
    request_of_vote: dict[str, RequestHistory],
    findings: _Findings,
) -> None:
    """The counted vote must be one the client sent before it heard of any other vote of
    the same voter being acknowledged."""
    first_ack: dict[tuple[str, str], float] = {}
    for request in observed.requests.values():
        acks = [a.ended for a in request.attempts if a.code == "OK"]
        if acks:
            key = (request.poll_id, observed.voter_keys.key(request.voter_id))
            first_ack[key] = min(first_ack.get(key, acks[0]), *acks)
    for key, (vote_id, _) in truth.items():
        winner = request_of_vote.get(vote_id)
        if winner is None or not winner.attempts:
            continue
        heard = first_ack.get(key)
        sent = winner.attempts[0].started
        if (
            heard is not None
            and sent > heard
            and not any(a.code == "OK" and a.ended <= heard for a in winner.attempts)
        ):
            findings.add(
                "later_vote_won",
                {"vote_id": vote_id, "sent_s_after_first_ack": round(sent - heard, 3)},
            )


def _tally(
    truth: dict[tuple[str, str], tuple[str, str]], poll_id: str, options: tuple[str, ...]
) -> dict[str, int]:
    counts = dict.fromkeys(options, 0)
    for (poll, _), (_, option_id) in truth.items():
        if poll == poll_id:
            counts[option_id] = counts.get(option_id, 0) + 1
    return counts


def _finals(
    observed: Observed,
    truth: dict[tuple[str, str], tuple[str, str]],
    stored: dict[tuple[str, str], tuple[str, str]],
    findings: _Findings,
) -> bool:
    ok = True
    for poll_id, final in observed.finals.items():
        expected = _tally(truth, poll_id, observed.options)
        if final is None or not final.final:
            findings.add("final_missing", {"poll_id": poll_id})
            ok = False
            continue
        got = {c.option_id: int(c.votes) for c in final.counts}
        in_dynamodb = _tally(
            {k: v for k, v in stored.items() if k[0] == poll_id}, poll_id, observed.options
        )
        if got != expected:
            ok = False
            rule = (
                "final_over_truth"
                if sum(got.values()) > sum(expected.values())
                else "final_differs"
            )
            findings.add(rule, {"poll_id": poll_id, "final": got, "truth": expected})
        if got != in_dynamodb:
            ok = False
            findings.add(
                "final_differs_from_dynamodb",
                {"poll_id": poll_id, "final": got, "dynamodb": in_dynamodb},
            )
    return ok


def _live(observed: Observed, findings: _Findings) -> bool:
    ok = True
    for poll_id, final in observed.finals.items():
        if final is None or not final.final:
            continue
        got = {c.option_id: int(c.votes) for c in final.counts}
        live = {c.option_id: int(c.votes) for c in final.recount.live_counts}
        live = {o: live.get(o, 0) for o in got}
        if live != got:
            ok = False
            findings.add("live_differs", {"poll_id": poll_id, "live": live, "final": got})
    return ok


def _statuses(
    observed: Observed, truth: dict[tuple[str, str], tuple[str, str]], findings: _Findings
) -> bool:
    counted = {vote_id: option_id for vote_id, option_id in truth.values()}
    ok = True
    for vote_id, status in observed.statuses.items():
        if status is None:
            ok = False
            findings.add("status_differs", {"vote_id": vote_id, "status": "no answer"})
            continue
        state, reason, option_id = status
        if vote_id in counted:
            right = state == vote_pb2.VOTE_STATE_ACCEPTED and option_id == counted[vote_id]
        else:
            right = state == vote_pb2.VOTE_STATE_REJECTED
        if not right:
            ok = False
            findings.add(
                "status_differs",
                {
                    "vote_id": vote_id,
                    "state": vote_pb2.VoteState.Name(state),
                    "reason": reason,
                    "option": option_id,
                    "counted": counted.get(vote_id),
                },
            )
    return ok
