"""The Redis read model: key layout and encodings shared by the projector (writer) and
the query service (reader).

Every key lives in a *namespace*, so a rebuilt read model can be written beside the live
one and readers switched over atomically (``readmodel:active`` names the live one).
A poll's keys share the hash tag ``{<poll_id>}``, so one Lua script can update them
together on a Redis Cluster too.

``<ns>:{<poll>}:poll``    Poll definition (protobuf ``Poll``), written from PollCreated
``<ns>:{<poll>}:counts``  hash option_id -> accepted votes
``<ns>:{<poll>}:meta``    hash: version, updated_at (ms), closed_at (ms), final, recount
                           (RecountReport), partitions (markers that close the poll),
                           ``o:<log>:<p>`` last applied ``votes`` offset of partition p,
                           ``drained:<p>`` the close marker of partition p was applied
``<ns>:polls``            sorted set of poll ids by creation time (ListPolls)
``<ns>:vs:<vote_id>``     a vote's decision (expires: VOTING_VOTE_STATUS_TTL_S)
``<ns>:progress``         hash p -> ms: every vote cast before it in partition p is applied
``<ns>:pos:<log>``        hash ``<topic>:<p>`` -> next offset the projector reads
``<ns>:log``              id of the log incarnation the offsets refer to
``<ns>:closing``          set of closed polls whose results are not final yet

``<log>`` identifies the Kafka topics' incarnation (from their topic ids): if the topics
are ever re-created, offsets start again at zero and old guards must not apply.
"""

from __future__ import annotations

from dataclasses import dataclass

from voting.v1 import vote_pb2

ACTIVE_KEY = "readmodel:active"
DEFAULT_NAMESPACE = "rm"
CHANGES_CHANNEL = "readmodel:changes"
SWITCH_MESSAGE = b"@switch"


@dataclass(frozen=True, slots=True)
class Keys:
    namespace: str

    def poll(self, poll_id: str) -> str:
        return f"{self.namespace}:{{{poll_id}}}:poll"

    def counts(self, poll_id: str) -> str:
        return f"{self.namespace}:{{{poll_id}}}:counts"

    def meta(self, poll_id: str) -> str:
        return f"{self.namespace}:{{{poll_id}}}:meta"

    @property
    def polls(self) -> str:
        return f"{self.namespace}:polls"

    def vote_status(self, vote_id: str) -> str:
        return f"{self.namespace}:vs:{vote_id}"

    @property
    def progress(self) -> str:
        return f"{self.namespace}:progress"

    def positions(self, log_id: str) -> str:
        return f"{self.namespace}:pos:{log_id}"

    @property
    def log(self) -> str:
        return f"{self.namespace}:log"

    @property
    def closing(self) -> str:
        return f"{self.namespace}:closing"


def guard_field(log_id: str, partition: int) -> str:
    return f"o:{log_id}:{partition}"


def drained_field(partition: int) -> str:
    return f"drained:{partition}"


@dataclass(frozen=True, slots=True)
class VoteStatus:
    state: int  # VoteState
    reason: int = vote_pb2.REJECT_REASON_UNSPECIFIED
    option_id: str = ""
    accepted_vote_id: str = ""
    decided_at_ms: int = 0
    voter_key: str = ""
    poll_id: str = ""  # empty in statuses written before they named their poll

    def encode(self) -> bytes:
        fields = (
            self.state,
            self.reason,
            self.option_id,
            self.accepted_vote_id,
            self.decided_at_ms,
            self.voter_key,
            self.poll_id,
        )
        return "|".join(map(str, fields)).encode()

    @classmethod
    def decode(cls, raw: bytes) -> VoteStatus:
        state, reason, option_id, accepted, decided, *rest = raw.decode().split("|")
        voter_key = rest[0] if rest else ""
        poll_id = rest[1] if len(rest) > 1 else ""
        return cls(int(state), int(reason), option_id, accepted, int(decided), voter_key, poll_id)


def change_message(poll_id: str, version: int) -> bytes:
    return f"{poll_id} {version}".encode()


def parse_change(message: bytes) -> tuple[str, int] | None:
    try:
        poll_id, version = message.decode().split(" ", 1)
        return poll_id, int(version)
    except ValueError:
        return None
