"""Errors of the projector.

::

    ProjectorError
    └── GuardMismatch    the read model is not where the projector thought: resync
"""

from __future__ import annotations

from voting.errors import VotingError


class ProjectorError(VotingError):
    """Root of the projector's errors."""


class GuardMismatch(ProjectorError):
    """A stored guard or position differs from the projector's view (another instance
    applied it, or Redis lost its last writes); nothing further was changed."""
