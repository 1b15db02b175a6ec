"""What every service process sets up first: logs, fault points, telemetry."""

from __future__ import annotations

from voting import faults, logs, telemetry
from voting.config import Settings


def setup(service: str, settings: Settings) -> None:
    logs.configure(service, level=settings.telemetry.log_level)
    faults.configure(settings.telemetry.faults)
    telemetry.configure(service, settings.telemetry)
