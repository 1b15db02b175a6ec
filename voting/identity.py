"""Identities derived from voters and requests.

A voter's raw id stays in the command service. Everywhere else (events, DynamoDB keys,
logs) the voter is a *voter key*: a keyed hash (HMAC-SHA256, 128 bits) of the id. Equal
ids give equal keys, which is all one-vote-per-voter needs; without the secret a key
cannot be tied back to an id.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid

from voting.config import SecuritySettings
from voting.errors import ConfigError

POLL_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
OPTION_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
VOTE_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

DEVELOPMENT_SECRET = "development-only-voter-key-secret"
_NAMESPACE = b"voting.v1"


def service_secret(settings: SecuritySettings) -> bytes:
    """VOTING_VOTER_KEY_SECRET, the secret the services share and no client holds (keys
    for other uses are derived from it); the built-in one in development only."""
    secret = settings.voter_key_secret
    if not secret:
        if not settings.development:
            raise ConfigError(
                "VOTING_VOTER_KEY_SECRET must be set in production "
                "(VOTING_ENVIRONMENT=development uses a built-in one)"
            )
        secret = DEVELOPMENT_SECRET
    return secret.encode()


class VoterKeys:
    def __init__(self, secret: bytes) -> None:
        self._mac = hmac.new(secret, digestmod=hashlib.sha256)

    @classmethod
    def from_settings(cls, settings: SecuritySettings) -> VoterKeys:
        return cls(service_secret(settings))

    def key(self, voter_id: str) -> str:
        mac = self._mac.copy()
        mac.update(voter_id.encode())
        return mac.hexdigest()[:32]


def vote_id_for(poll_id: str, voter_key: str, request_id: str) -> str:
    """The vote id of a command: stable across retries when the client sent a request id."""
    if not request_id:
        return str(uuid.uuid4())
    return stable_id("vote", poll_id, voter_key, request_id)


def stable_id(*parts: str) -> str:
    """A UUID determined by ``parts``: the same event published twice keeps its id."""
    digest = hashlib.blake2b(
        b"\x1f".join((_NAMESPACE, *(p.encode() for p in parts))), digest_size=16
    ).digest()
    # RFC 9562 version 8 (custom) with the RFC variant; Python 3.11 cannot set it itself.
    raw = bytearray(digest)
    raw[6] = (raw[6] & 0x0F) | 0x80
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()  # formatted by hand: uuid.UUID costs several times more, per vote
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
