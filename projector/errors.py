"""Errors of the projector.

::

    ProjectorError
    ├── GuardMismatch    the read model is not where the projector thought: resync
    ├── PollNotClosed    a recount was asked for a poll that is open
    └── NotDrained       a partition has not passed the poll's close point yet
"""

from __future__ import annotations

from voting.errors import VotingError


class ProjectorError(VotingError):
    """Root of the projector's errors."""


class GuardMismatch(ProjectorError):
    """A stored guard or position differs from the projector's view (another instance
    applied it, or Redis lost its last writes); nothing further was changed."""


class PollNotClosed(ProjectorError):
    """Only closed polls can be recounted."""


class NotDrained(ProjectorError):
    """Some partition has not passed the poll's close point: its votes may still come."""
