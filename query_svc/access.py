"""Who may read what on the query side.

Polls are public or private. A private poll's results (GetResults, WatchResults) need a
token whose scope covers the poll (``read:<poll>``, ``read:*``, ``vote:<poll>``, ``vote:*``
or ``admin``). A vote's status is told only to its voter (the token's subject, hashed
with the voter-key secret, must equal the vote's voter key) or to an admin.

Whether a poll is private is read from the source of truth, the DynamoDB ``polls`` table
(cached for VOTING_POLL_CACHE_TTL_S), never from the read model: the read model is a
projection anyone with Redis access could alter, so it decides nothing about access.
"""

from __future__ import annotations

from collections.abc import Iterable

from query_svc.errors import ReadModelUnavailable
from voting.config import AuthSettings, SecuritySettings
from voting.errors import InfrastructureError, PermissionDenied, Unauthenticated
from voting.identity import VoterKeys
from voting.polls import PollCache
from voting.tokens import Claims, InvalidToken, TokenVerifier, bearer, verifier_for

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

    def caller(self, metadata: Metadata) -> Claims | None:
        """The caller's verified claims; None without a token. A bad token is refused even
        where none is needed: it is never silently read as anonymous."""
        token = bearer(metadata)
        if token is None or self._verifier is None:
            return None
        try:
            return self._verifier.verify(token)
        except InvalidToken as exc:
            raise Unauthenticated(exc.reason, str(exc)) from exc

    async def check_results(self, poll_id: str, metadata: Metadata) -> None:
        if self._verifier is None:
            return
        claims = self.caller(metadata)
        try:
            poll = await self._polls.get(poll_id)
        except InfrastructureError as exc:
            raise ReadModelUnavailable(str(exc)) from exc
        if poll is None or not poll.private:
            return
        if claims is None:
            raise Unauthenticated("MISSING_TOKEN", "this poll is private: send a bearer token")
        if not (claims.may("read", poll_id) or claims.may("vote", poll_id)):
            raise PermissionDenied(
                "POLL_NOT_IN_SCOPE", f"the token's scope does not cover poll {poll_id!r}"
            )

    def check_vote_owner(self, metadata: Metadata, voter_key: str) -> None:
        if self._verifier is None:
            return
        claims = self.caller(metadata)
        if claims is None:
            raise Unauthenticated(
                "MISSING_TOKEN", "a vote's status is told to its voter: send a bearer token"
            )
        if not claims.admin and self._voter_keys.key(claims.subject) != voter_key:
            raise PermissionDenied("NOT_YOUR_VOTE", "a vote's status is told only to its voter")
