"""Who may run which command.

Authentication (who is calling) happens once per RPC, before any command runs.
Authorization (may this caller vote as this voter, administer polls) happens per command,
after its structure and business rules were checked and before idempotency.

The authorizer is pluggable. ``DevelopmentAuthorizer`` lets anyone vote as anyone and
administer polls; it exists for the local stack and tests and cannot be built unless
VOTING_ENVIRONMENT=development. In production, until token verification is configured,
``NoAuthenticator`` refuses every call with UNAUTHENTICATED: a misconfigured deployment
fails closed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from command_svc.errors import Unauthenticated
from voting.config import SecuritySettings
from voting.errors import ConfigError

Metadata = Iterable[tuple[str, str | bytes]]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller."""

    subject: str
    admin: bool = False


class Authorizer(Protocol):
    def authenticate(self, metadata: Metadata) -> Principal:
        """The caller, from the call's metadata; raises Unauthenticated."""

    def authorize_admin(self, principal: Principal) -> None:
        """Raises PermissionDenied unless the caller may administer polls."""

    def authorize_vote(self, principal: Principal, voter_id: str) -> None:
        """Raises PermissionDenied unless the caller may vote as ``voter_id``."""


class DevelopmentAuthorizer:
    def __init__(self, settings: SecuritySettings) -> None:
        if not settings.development:
            raise ConfigError("the development authorizer needs VOTING_ENVIRONMENT=development")

    def authenticate(self, metadata: Metadata) -> Principal:
        return Principal("development", admin=True)

    def authorize_admin(self, principal: Principal) -> None:
        return None

    def authorize_vote(self, principal: Principal, voter_id: str) -> None:
        return None


class NoAuthenticator:
    def authenticate(self, metadata: Metadata) -> Principal:
        raise Unauthenticated(
            "NO_AUTHENTICATOR", "no authenticator is configured: commands are refused"
        )

    def authorize_admin(self, principal: Principal) -> None:  # pragma: no cover - unreachable
        raise AssertionError("NoAuthenticator authenticates nobody")

    def authorize_vote(self, principal: Principal, voter_id: str) -> None:  # pragma: no cover
        raise AssertionError("NoAuthenticator authenticates nobody")


def authorizer_for(settings: SecuritySettings) -> Authorizer:
    if settings.development:
        return DevelopmentAuthorizer(settings)
    return NoAuthenticator()
