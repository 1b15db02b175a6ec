"""Creates the topics and tables the system needs; safe to run any number of times."""

from __future__ import annotations

import asyncio

from voting import dynamodb
from voting.config import Settings
from voting.kafka import KafkaClients


def provision(settings: Settings) -> None:
    KafkaClients(settings.kafka, settings.topics).ensure_topics()
    asyncio.run(dynamodb.ensure_tables(settings.dynamodb))
