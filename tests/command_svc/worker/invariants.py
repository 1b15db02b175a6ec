"""The write side's guarantees, as assertions over what the real stores hold."""

from __future__ import annotations

from collections import defaultdict

from tests.harness import Ack, Deployment, first_votes, wait_until


def assert_exactly_once(
    deployment: Deployment, acks: list[Ack], *, timeout_s: float = 120
) -> dict[str, int]:
    """Every acknowledged vote is decided exactly once, and DynamoDB holds exactly one
    item per (poll, voter): that voter's first acknowledged vote."""
    assert acks, "no vote was acknowledged"
    wanted = {a.vote_id for a in acks}
    decisions: dict[str, set[tuple[str, int]]] = {}

    def all_decided() -> bool:
        nonlocal decisions
        decisions = deployment.decisions()
        return wanted <= decisions.keys()

    wait_until(
        all_decided,
        timeout_s=timeout_s,
        interval_s=1.0,
        what="a decision for every acknowledged vote",
    )
    ambiguous = {v: d for v, d in decisions.items() if v in wanted and len(d) != 1}
    assert not ambiguous, f"votes with conflicting decisions: {list(ambiguous.items())[:5]}"

    first = first_votes(acks)
    accepted = {v for v in wanted if decisions[v] == {("accepted", 0)}}
    assert accepted == {a.vote_id for a in first.values()}, (
        "accepted votes are not exactly the first ones"
    )

    items = deployment.ledger_items()
    by_voter: dict[tuple[str, str], list[str]] = defaultdict(list)
    for item in items:
        by_voter[(item["poll_id"]["S"], item["voter_key"]["S"])].append(item["vote_id"]["S"])
    assert all(len(v) == 1 for v in by_voter.values())
    expected = {
        (poll_id, deployment.voter_keys.key(voter_id)): ack.vote_id
        for (poll_id, voter_id), ack in first.items()
    }
    stored = {key: ids[0] for key, ids in by_voter.items()}
    differing = len(set(stored.items()) ^ set(expected.items()))
    assert stored == expected, f"{differing} DynamoDB items differ from the first votes"
    stats = {
        "acknowledged": len(acks),
        "voters": len(first),
        "decision_records": deployment.decision_records,
    }
    print(f"exactly-once check: {stats}")
    return stats
