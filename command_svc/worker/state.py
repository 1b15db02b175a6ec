"""The dedup state of one partition: which voter already has a counted vote in which poll.

Decisions are a pure function of this state, the records of the partition in order, and
(for votes that arrive after their poll's close point) what DynamoDB holds for the
voter; so replaying a partition from a committed offset with the state as of that
offset always yields the same decisions. Changes are staged while a batch is decided
and applied only after its transaction commits.

Memory: one entry per (open poll, voter) of the partition, about 150 bytes, plus one per
closed poll. A poll's entries are dropped when its close marker passes, and tombstoned
in the changelog so a compacted changelog forgets them too. A vote that comes after the
close is CLOSED, unless it is the voter's counted vote again (a late retry): that one is
REPEATED. Which vote was counted then comes from DynamoDB (``after_close``), since the
state no longer holds it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from voting.v1 import vote_pb2

ACCEPT = 0
DUPLICATE = vote_pb2.REJECT_REASON_DUPLICATE
CLOSED = vote_pb2.REJECT_REASON_CLOSED
REPEATED = vote_pb2.REJECT_REASON_REPEATED

_SEP = "\x1f"
_CLOSED_PREFIX = "\x00closed" + _SEP
_OFFSET = struct.Struct(">q")
# Rewritten (checkpointed) entries carry this source offset: below any committed offset,
# so a restore always applies them.
REWRITTEN = 0

ChangelogRecord = tuple[bytes, bytes | None]  # a None value is a tombstone


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: int  # ACCEPT or a RejectReason
    accepted_vote_id: str = ""  # for DUPLICATE and REPEATED: the counted vote
    # CLOSED, but whether the voter's counted vote is this one must be looked up first.
    unknown: bool = False


@dataclass(slots=True)
class Staged:
    """Changes decided in a batch, not yet committed."""

    voters: dict[tuple[str, str], str] = field(default_factory=dict)
    closed: list[str] = field(default_factory=list)
    changelog: list[ChangelogRecord] = field(default_factory=list)


class DedupState:
    def __init__(self) -> None:
        self._voters: dict[str, dict[str, str]] = {}
        self._closed: set[str] = set()

    def __len__(self) -> int:
        return sum(len(v) for v in self._voters.values())

    @property
    def entries(self) -> int:
        """Records a rewrite of this state writes: one per voter and per closed poll."""
        return len(self) + len(self._closed)

    def decide_vote(
        self,
        staged: Staged,
        poll_id: str,
        voter_key: str,
        vote_id: str,
        offset: int,
        *,
        after_close: Mapping[tuple[str, str], str] | None = None,
    ) -> Decision:
        """``after_close`` maps (poll, voter) of closed polls to the vote id DynamoDB holds
        ("" for none); without an entry, a vote for a closed poll from a voter this state
        no longer knows is decided CLOSED with ``unknown`` set."""
        key = (poll_id, voter_key)
        counted = staged.voters.get(key)
        if counted is None:
            counted = self._voters.get(poll_id, {}).get(voter_key)
        if poll_id in self._closed or poll_id in staged.closed:
            if counted is None:
                stored = after_close.get(key) if after_close is not None else None
                if stored is None:
                    return Decision(CLOSED, unknown=True)
                counted = stored or None
            if counted == vote_id:
                return Decision(REPEATED, counted)
            return Decision(CLOSED, counted or "")
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
            (_voter_key(poll_id, voter_key), _OFFSET.pack(offset) + vote_id.encode())
        )

    def stage_close(self, staged: Staged, poll_id: str, offset: int) -> None:
        """Closes the poll: its marker, then a tombstone for each of its voters."""
        if poll_id in self._closed or poll_id in staged.closed:
            return
        staged.closed.append(poll_id)
        staged.changelog.append(((_CLOSED_PREFIX + poll_id).encode(), _OFFSET.pack(offset)))
        voters = set(self._voters.get(poll_id, {}))
        voters.update(v for (p, v) in staged.voters if p == poll_id)
        staged.changelog.extend((_voter_key(poll_id, v), None) for v in sorted(voters))

    def apply(self, staged: Staged) -> None:
        for (poll_id, voter_key), vote_id in staged.voters.items():
            if poll_id not in self._closed:
                self._voters.setdefault(poll_id, {})[voter_key] = vote_id
        for poll_id in staged.closed:
            self._close(poll_id)

    def _close(self, poll_id: str) -> None:
        self._closed.add(poll_id)
        self._voters.pop(poll_id, None)

    def rewrite(self) -> Iterator[tuple[bytes, bytes]]:
        """The whole state as changelog records: a restore from the first of them onwards
        needs nothing older (a checkpoint)."""
        marker = _OFFSET.pack(REWRITTEN)
        for poll_id in sorted(self._closed):
            yield (_CLOSED_PREFIX + poll_id).encode(), marker
        for poll_id, voters in self._voters.items():
            for voter_key, vote_id in voters.items():
                yield _voter_key(poll_id, voter_key), marker + vote_id.encode()

    def restore(self, key: bytes, value: bytes | None, committed: int) -> bool:
        """Applies one changelog record if it belongs to a committed transaction.

        A record's source offset below the committed input offset means the input it
        came from was committed; records of aborted transactions (which the local broker
        shows to read_committed readers) carry offsets at or past it and are skipped.
        A decision replayed after an abort is identical, so applying both is harmless.
        Tombstones are skipped: they only let compaction forget a closed poll's voters,
        whom the poll's close marker (earlier in the log) drops anyway; and a tombstone
        carries no source offset, so one of an aborted close could not be told apart.
        """
        if value is None:
            return False
        text = key.decode()
        (source,) = _OFFSET.unpack_from(value)
        if source >= committed:
            return False
        if text.startswith(_CLOSED_PREFIX):
            self._close(text[len(_CLOSED_PREFIX) :])
            return True
        poll_id, voter_key = text.split(_SEP, 1)
        if poll_id not in self._closed:
            self._voters.setdefault(poll_id, {})[voter_key] = value[_OFFSET.size :].decode()
        return True


def _voter_key(poll_id: str, voter_key: str) -> bytes:
    return (poll_id + _SEP + voter_key).encode()
