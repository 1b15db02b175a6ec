"""Vote receipts: the command service signs what it accepted; a voter can later prove it.

A receipt binds the vote id, the poll, a digest of the chosen option and the time the
service accepted the vote, signed with the service's Ed25519 key (its id travels with the
receipt, so keys rotate like token keys). ``GetVoteStatus`` with the receipt verifies the
signature and answers whether the vote was counted for the option the receipt names:
counted as cast.

The digest is an HMAC with a key only the services hold (derived from the voter-key
secret), never a plain hash: with a plain one, whoever holds a receipt hashes each of
the poll's few options and learns the choice. So a receipt proves to the service (and
through GetVoteStatus, to its holder) that the vote was accepted and counted as cast;
it shows nobody the option, and it cannot prove the option to a third party, which is
what keeps a voter from being made to show how they voted.
"""

from __future__ import annotations

import hmac
import json
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from voting.config import ReceiptSettings, SecuritySettings
from voting.errors import ConfigError, VotingError
from voting.identity import service_secret
from voting.v1 import vote_pb2


class InvalidReceipt(VotingError):
    """The receipt was not signed by a trusted key, or was altered."""


class OptionDigests:
    """The receipt's binding of the option: HMAC-SHA256 of ``<vote_id>\x1f<option_id>``."""

    _PURPOSE = b"voting.v1.VoteReceipt.option_digest"

    def __init__(self, secret: bytes) -> None:
        # A key of its own: a digest never doubles as a voter key, or the reverse.
        self._mac = hmac.new(hmac.digest(secret, self._PURPOSE, "sha256"), digestmod="sha256")

    @classmethod
    def from_settings(cls, settings: SecuritySettings) -> OptionDigests:
        return cls(service_secret(settings))

    def of(self, vote_id: str, option_id: str) -> bytes:
        mac = self._mac.copy()
        mac.update(f"{vote_id}\x1f{option_id}".encode())
        return mac.digest()

    def matches(self, receipt: vote_pb2.VoteReceipt, option_id: str) -> bool:
        return hmac.compare_digest(self.of(receipt.vote_id, option_id), receipt.option_digest)


def _payload(receipt: vote_pb2.VoteReceipt) -> bytes:
    unsigned = vote_pb2.VoteReceipt()
    unsigned.CopyFrom(receipt)
    unsigned.ClearField("signature")
    return unsigned.SerializeToString(deterministic=True)


class ReceiptSigner:
    def __init__(
        self, key: ed25519.Ed25519PrivateKey, *, key_id: str, digests: OptionDigests
    ) -> None:
        self._key = key
        self._key_id = key_id
        self._digests = digests

    @classmethod
    def from_settings(
        cls, settings: ReceiptSettings, security: SecuritySettings
    ) -> ReceiptSigner | None:
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
        return cls(key, key_id=settings.key_id, digests=OptionDigests.from_settings(security))

    def issue(
        self, receipt: vote_pb2.VoteReceipt, *, option_id: str, received_at_ms: int
    ) -> vote_pb2.VoteReceipt:
        """Completes ``receipt`` (its vote_id and poll_id set) and signs it."""
        receipt.option_digest = self._digests.of(receipt.vote_id, option_id)
        receipt.received_at.FromMilliseconds(received_at_ms)
        return self.sign(receipt)

    def sign(self, receipt: vote_pb2.VoteReceipt) -> vote_pb2.VoteReceipt:
        receipt.key_id = self._key_id
        receipt.signature = self._key.sign(_payload(receipt))
        return receipt


class ReceiptVerifier:
    def __init__(
        self, keys: dict[str, ed25519.Ed25519PublicKey], *, digests: OptionDigests
    ) -> None:
        self._keys = keys
        self._digests = digests

    @classmethod
    def from_settings(
        cls, settings: ReceiptSettings, security: SecuritySettings
    ) -> ReceiptVerifier:
        keys: dict[str, ed25519.Ed25519PublicKey] = {}
        if settings.public_keys:
            for kid, pem in json.loads(settings.public_keys).items():
                key = serialization.load_pem_public_key(str(pem).encode())
                if not isinstance(key, ed25519.Ed25519PublicKey):
                    raise ConfigError(f"receipt key {kid!r} is not Ed25519")
                keys[str(kid)] = key
        return cls(keys, digests=OptionDigests.from_settings(security))

    def verify(self, receipt: vote_pb2.VoteReceipt) -> None:
        key = self._keys.get(receipt.key_id)
        if key is None:
            raise InvalidReceipt(f"receipt key {receipt.key_id!r} is not trusted")
        try:
            key.verify(receipt.signature, _payload(receipt))
        except InvalidSignature as exc:
            raise InvalidReceipt("the receipt's signature does not verify") from exc

    def names_option(self, receipt: vote_pb2.VoteReceipt, option_id: str) -> bool:
        """Whether the (verified) receipt names ``option_id``."""
        return self._digests.matches(receipt, option_id)
