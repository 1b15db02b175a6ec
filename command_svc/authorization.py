"""Who may run which command.

Authentication (who is calling) happens once per RPC, before any command runs: the
caller's ``authorization: Bearer <JWT>`` metadata is verified (voting.tokens).
Authorization (may this caller vote as this voter in this poll, administer polls)
happens per command, after its structure and business rules were checked and before
rate limits and idempotency: a vote's voter must be the token's subject, and the
token's scope must cover the poll (``vote:<poll>`` or ``vote:*``); creating and closing
polls needs ``admin``. A gateway or bulk client that authenticated its voters itself holds
``proxy:<poll>`` (or ``proxy:*``) and may cast votes for any voter of those polls.

``DevelopmentAuthorizer`` lets anyone vote as anyone and administer polls. It exists for
the local stack and tests, is chosen only by VOTING_AUTH_MODE=development, and refuses to
be built unless VOTING_ENVIRONMENT=development too: production settings fail closed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from voting.config import AuthSettings, SecuritySettings
from voting.errors import PermissionDenied, Unauthenticated
from voting.tokens import InvalidToken, TokenVerifier, bearer, verifier_for

Metadata = Iterable[tuple[str, str | bytes]]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller."""

    subject: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    admin: bool = False

    def may_vote(self, poll_id: str) -> bool:
        return self.admin or bool({f"vote:{poll_id}", "vote:*"} & self.scopes)

    def may_vote_for_others(self, poll_id: str) -> bool:
        """A trusted gateway or bulk client that authenticated its voters itself."""
        return bool({f"proxy:{poll_id}", "proxy:*"} & self.scopes)


class Authorizer(Protocol):
    def authenticate(self, metadata: Metadata) -> Principal:
        """The caller, from the call's metadata; raises Unauthenticated."""

    def authorize_admin(self, principal: Principal) -> None:
        """Raises PermissionDenied unless the caller may administer polls."""

    def authorize_vote(self, principal: Principal, voter_id: str, poll_id: str) -> None:
        """Raises PermissionDenied unless the caller may vote as ``voter_id`` in ``poll_id``."""


class JwtAuthorizer:
    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier

    def authenticate(self, metadata: Metadata) -> Principal:
        try:
            token = bearer(metadata)
            if token is None:
                raise InvalidToken("MISSING_TOKEN", "send `authorization: Bearer <token>` metadata")
            claims = self._verifier.verify(token)
        except InvalidToken as exc:
            raise Unauthenticated(exc.reason, str(exc)) from exc
        return Principal(claims.subject, claims.scopes, admin=claims.admin)

    def authorize_admin(self, principal: Principal) -> None:
        if not principal.admin:
            raise PermissionDenied(
                "ADMIN_SCOPE_REQUIRED", "this command needs a token with the admin scope"
            )

    def authorize_vote(self, principal: Principal, voter_id: str, poll_id: str) -> None:
        if principal.may_vote_for_others(poll_id):
            return
        if principal.subject != voter_id:
            raise PermissionDenied("NOT_THIS_VOTER", "a token may vote only as its own subject")
        if not principal.may_vote(poll_id):
            raise PermissionDenied(
                "POLL_NOT_IN_SCOPE", f"the token's scope does not cover poll {poll_id!r}"
            )


class DevelopmentAuthorizer:
    def authenticate(self, metadata: Metadata) -> Principal:
        return Principal("development", admin=True)

    def authorize_admin(self, principal: Principal) -> None:
        return None

    def authorize_vote(self, principal: Principal, voter_id: str, poll_id: str) -> None:
        return None


def authorizer_for(auth: AuthSettings, security: SecuritySettings) -> Authorizer:
    verifier = verifier_for(auth, security)
    return DevelopmentAuthorizer() if verifier is None else JwtAuthorizer(verifier)
