"""Errors of the local stack."""

from __future__ import annotations

from voting.errors import VotingError


class StackError(VotingError):
    """The stack cannot start or run; ``fix`` says what the user can do about it."""

    def __init__(self, cause: str, *, fix: str = "") -> None:
        super().__init__(f"{cause}{f' (fix: {fix})' if fix else ''}")
        self.cause = cause
        self.fix = fix
