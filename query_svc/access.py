"""Who may read what on the query side.

Every RPC verifies the caller's token first, when one is sent. Polls are public or
private. A private poll (GetPoll, ListPolls) and its results (GetResults, WatchResults)
need a token whose scope covers the poll (``read:<poll>``, ``read:*``, ``vote:<poll>``,
``vote:*`` or ``admin``). A vote's status is told only to its voter (the token's subject, hashed
with the voter-key secret, must equal the vote's voter key) or to an admin.

Whether a poll is private is read from the source of truth, the DynamoDB ``polls`` table
(cached for VOTING_POLL_CACHE_TTL_S), not from the read model: the read model is a
projection anyone with Redis access could alter, so it may hide a poll but never opens one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from query_svc.errors import ReadModelUnavailable
from voting.config import AuthSettings, SecuritySettings
from voting.errors import InfrastructureError, PermissionDenied, Unauthenticated
from voting.identity import VoterKeys
from voting.polls import PollCache
from voting.tokens import Claims, InvalidToken, TokenVerifier, bearer, verifier_for
from voting.v1 import poll_pb2

Metadata = Iterable[tuple[str, str | bytes]]


class Access:
    def __init__(
        self,
        *,
        verifier: TokenVerifier | None,
        polls: PollCache,
        voter_keys: VoterKeys,
    ) -> None:
        self._verifier = verifier  # None: development mode, everyone may read everything
        self._polls = polls
        self._voter_keys = voter_keys

    @classmethod
    def from_settings(
        cls, auth: AuthSettings, security: SecuritySettings, *, polls: PollCache
    ) -> Access:
        return cls(
            verifier=verifier_for(auth, security),
            polls=polls,
            voter_keys=VoterKeys.from_settings(security),
        )

    @property
    def checks_tokens(self) -> bool:
        return self._verifier is not None

    def caller(self, metadata: Metadata) -> Claims | None:
        """The caller's verified claims; None without a token. Every RPC calls this first:
        a bad, expired or repeated token is refused even where none is needed, never
        silently read as anonymous."""
        if self._verifier is None:
            return None
        try:
            token = bearer(metadata)
            return None if token is None else self._verifier.verify(token)
        except InvalidToken as exc:
            raise Unauthenticated(exc.reason, str(exc)) from exc

    async def _private(self, poll_id: str) -> bool | None:
        """Whether the source of truth says the poll is private; None if it is unknown."""
        try:
            poll = await self._polls.get(poll_id)
        except InfrastructureError as exc:
            raise ReadModelUnavailable(str(exc)) from exc
        return None if poll is None else poll.private

    @staticmethod
    def _in_scope(claims: Claims | None, poll_id: str) -> bool:
        return claims is not None and (claims.may("read", poll_id) or claims.may("vote", poll_id))

    async def check_poll(self, poll_id: str, claims: Claims | None) -> None:
        """A private poll (its definition, results and live stream) is shown only to a
        caller whose scope covers it."""
        if self._verifier is None or self._in_scope(claims, poll_id):
            return
        if not await self._private(poll_id):
            return
        if claims is None:
            raise Unauthenticated("MISSING_TOKEN", "this poll is private: send a bearer token")
        raise PermissionDenied(
            "POLL_NOT_IN_SCOPE", f"the token's scope does not cover poll {poll_id!r}"
        )

    async def visible(self, polls: Sequence[poll_pb2.Poll], claims: Claims | None) -> list[bool]:
        """Which of ``polls`` (from the read model) the caller may see. A poll is hidden
        when either the read model or the source of truth says it is private: the read
        model alone never opens access."""
        if self._verifier is None:
            return [True] * len(polls)
        private = await asyncio.gather(*(self._private(p.poll_id) for p in polls))
        return [
            self._in_scope(claims, poll.poll_id)
            or (poll.visibility != poll_pb2.VISIBILITY_PRIVATE and not hidden)
            for poll, hidden in zip(polls, private, strict=True)
        ]

    def check_vote_owner(self, claims: Claims | None, voter_key: str) -> None:
        if self._verifier is None:
            return
        if claims is None:
            raise Unauthenticated(
                "MISSING_TOKEN", "a vote's status is told to its voter: send a bearer token"
            )
        if not claims.admin and self._voter_keys.key(claims.subject) != voter_key:
            raise PermissionDenied("NOT_YOUR_VOTE", "a vote's status is told only to its voter")
