"""The dedup state of one partition: which voter already has a counted vote in which poll.

Decisions are a pure function of this state and the records of the partition, in
order; so replaying a partition from a committed offset with the state as of that
offset always yields the same decisions. Changes are staged while a batch is decided
and applied only after its transaction commits.

Memory: one entry per (open poll, voter) of the partition, about 150 bytes; a poll's
entries are dropped when its close marker passes, since every later vote for it is
rejected as CLOSED anyway.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from voting.v1 import vote_pb2

ACCEPT = 0
DUPLICATE = vote_pb2.REJECT_REASON_DUPLICATE
CLOSED = vote_pb2.REJECT_REASON_CLOSED
REPEATED = vote_pb2.REJECT_REASON_REPEATED

_SEP = "\x1f"
_CLOSED_PREFIX = "\x00closed" + _SEP
_OFFSET = struct.Struct(">q")


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: int  # ACCEPT or a RejectReason
    accepted_vote_id: str = ""  # for DUPLICATE and REPEATED: the counted vote


@dataclass(slots=True)
class Staged:
    """Changes decided in a batch, not yet committed."""

    voters: dict[tuple[str, str], str] = field(default_factory=dict)
    closed: list[str] = field(default_factory=list)
    changelog: list[tuple[bytes, bytes]] = field(default_factory=list)


class DedupState:
    def __init__(self) -> None:
        self._voters: dict[str, dict[str, str]] = {}
        self._closed: set[str] = set()

    def __len__(self) -> int:
        return sum(len(v) for v in self._voters.values())

    def decide_vote(
        self, staged: Staged, poll_id: str, voter_key: str, vote_id: str, offset: int
    ) -> Decision:
        if poll_id in self._closed or poll_id in staged.closed:
            return Decision(CLOSED)
        counted = staged.voters.get((poll_id, voter_key))
        if counted is None:
            counted = self._voters.get(poll_id, {}).get(voter_key)
        if counted is None:
            self.stage_voter(staged, poll_id, voter_key, vote_id, offset)
            return Decision(ACCEPT)
        if counted == vote_id:
            return Decision(REPEATED, counted)
        return Decision(DUPLICATE, counted)

    def stage_voter(
        self, staged: Staged, poll_id: str, voter_key: str, vote_id: str, offset: int
    ) -> None:
        staged.voters[(poll_id, voter_key)] = vote_id
        staged.changelog.append(
            ((poll_id + _SEP + voter_key).encode(), _OFFSET.pack(offset) + vote_id.encode())
        )

    def stage_close(self, staged: Staged, poll_id: str, offset: int) -> None:
        if poll_id in self._closed or poll_id in staged.closed:
            return
        staged.closed.append(poll_id)
        staged.changelog.append(((_CLOSED_PREFIX + poll_id).encode(), _OFFSET.pack(offset)))

    def apply(self, staged: Staged) -> None:
        for (poll_id, voter_key), vote_id in staged.voters.items():
            if poll_id not in self._closed:
                self._voters.setdefault(poll_id, {})[voter_key] = vote_id
        for poll_id in staged.closed:
            self._close(poll_id)

    def _close(self, poll_id: str) -> None:
        self._closed.add(poll_id)
        self._voters.pop(poll_id, None)

    def restore(self, key: bytes, value: bytes, committed: int) -> bool:
        """Applies one changelog record if it belongs to a committed transaction.

        A record's source offset below the committed input offset means the input it
        came from was committed; records of aborted transactions (which the local broker
        shows to read_committed readers) carry offsets at or past it and are skipped.
        A decision replayed after an abort is identical, so applying both is harmless.
        """
        (source,) = _OFFSET.unpack_from(value)
        if source >= committed:
            return False
        text = key.decode()
        if text.startswith(_CLOSED_PREFIX):
            self._close(text[len(_CLOSED_PREFIX) :])
            return True
        poll_id, voter_key = text.split(_SEP, 1)
        if poll_id not in self._closed:
            self._voters.setdefault(poll_id, {})[voter_key] = value[_OFFSET.size :].decode()
        return True
