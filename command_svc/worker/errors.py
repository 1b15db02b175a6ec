"""Errors of the dedup worker.

::

    WorkerError
    ├── LedgerUnavailable    DynamoDB refused or failed a write: retry the batch later
    └── PartitionLost        this worker no longer owns the partition (fenced)
"""

from __future__ import annotations

from voting.errors import VotingError


class WorkerError(VotingError):
    """Root of the worker's errors."""


class LedgerUnavailable(WorkerError):
    """An accepted vote could not be written to DynamoDB."""


class PartitionLost(WorkerError):
    """Another worker has taken the partition's transactional id."""
