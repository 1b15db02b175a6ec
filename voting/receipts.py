"""Vote receipts: the command service signs what it accepted; a voter can later prove it.

A receipt binds the vote id, the poll, a digest of the chosen option and the time the
service accepted the vote, signed with the service's Ed25519 key (its id travels with the
receipt, so keys rotate like token keys). The option is a digest, keyed by the vote id,
so a receipt seen by someone else does not show the option in clear. ``GetVoteStatus``
with the receipt verifies the signature and answers whether the vote was counted for
the option the receipt names: counted as cast.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from voting.config import ReceiptSettings
from voting.errors import ConfigError, VotingError
from voting.v1 import vote_pb2


class InvalidReceipt(VotingError):
    """The receipt was not signed by a trusted key, or was altered."""


def option_digest(vote_id: str, option_id: str) -> bytes:
    return hashlib.sha256(f"{vote_id}\x1f{option_id}".encode()).digest()


def _payload(receipt: vote_pb2.VoteReceipt) -> bytes:
    unsigned = vote_pb2.VoteReceipt()
    unsigned.CopyFrom(receipt)
    unsigned.ClearField("signature")
    return unsigned.SerializeToString(deterministic=True)


class ReceiptSigner:
    def __init__(self, key: ed25519.Ed25519PrivateKey, *, key_id: str) -> None:
        self._key = key
        self._key_id = key_id

    @classmethod
    def from_settings(cls, settings: ReceiptSettings) -> ReceiptSigner | None:
        if not settings.private_key_file:
            return None
        try:
            key = serialization.load_pem_private_key(
                Path(settings.private_key_file).read_bytes(), password=None
            )
        except OSError as exc:
            raise ConfigError(f"cannot read VOTING_RECEIPT_PRIVATE_KEY_FILE: {exc}") from exc
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise ConfigError("the receipt signing key must be Ed25519")
        return cls(key, key_id=settings.key_id)

    def sign(self, receipt: vote_pb2.VoteReceipt) -> vote_pb2.VoteReceipt:
        receipt.key_id = self._key_id
        receipt.signature = self._key.sign(_payload(receipt))
        return receipt


class ReceiptVerifier:
    def __init__(self, keys: dict[str, ed25519.Ed25519PublicKey]) -> None:
        self._keys = keys

    @classmethod
    def from_settings(cls, settings: ReceiptSettings) -> ReceiptVerifier:
        keys: dict[str, ed25519.Ed25519PublicKey] = {}
        if settings.public_keys:
            for kid, pem in json.loads(settings.public_keys).items():
                key = serialization.load_pem_public_key(str(pem).encode())
                if not isinstance(key, ed25519.Ed25519PublicKey):
                    raise ConfigError(f"receipt key {kid!r} is not Ed25519")
                keys[str(kid)] = key
        return cls(keys)

    def verify(self, receipt: vote_pb2.VoteReceipt) -> None:
        key = self._keys.get(receipt.key_id)
        if key is None:
            raise InvalidReceipt(f"receipt key {receipt.key_id!r} is not trusted")
        try:
            key.verify(receipt.signature, _payload(receipt))
        except InvalidSignature as exc:
            raise InvalidReceipt("the receipt's signature does not verify") from exc
