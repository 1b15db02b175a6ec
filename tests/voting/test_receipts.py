"""Vote receipts: signed by the service, unforgeable, and binding the option."""

from __future__ import annotations

import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given
from hypothesis import strategies as st

from devkit.tokens import generate_keypair, load_private_key
from voting.config import ReceiptSettings, SecuritySettings
from voting.receipts import InvalidReceipt, OptionDigests, ReceiptSigner, ReceiptVerifier
from voting.v1 import vote_pb2

pytestmark = pytest.mark.unit


SECRET = b"the services' shared secret"
DIGESTS = OptionDigests(SECRET)
option_digest = DIGESTS.of


def signer_and_verifier() -> tuple[ReceiptSigner, ReceiptVerifier]:
    private_pem, public_pem = generate_keypair()
    key = load_private_key(private_pem)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    verifier = ReceiptVerifier.from_settings(
        ReceiptSettings(public_keys=json.dumps({"r1": public_pem.decode()})),
        SecuritySettings(voter_key_secret=SECRET.decode()),
    )
    return ReceiptSigner(key, key_id="r1", digests=DIGESTS), verifier


def receipt() -> vote_pb2.VoteReceipt:
    r = vote_pb2.VoteReceipt(vote_id="v-1", poll_id="p", option_digest=option_digest("v-1", "a"))
    r.received_at.FromMilliseconds(1_700_000_000_000)
    return r


def test_a_signed_receipt_verifies() -> None:
    signer, verifier = signer_and_verifier()
    verifier.verify(signer.sign(receipt()))


@pytest.mark.parametrize("field", ["vote_id", "poll_id", "option_digest", "received_at", "key_id"])
def test_any_altered_field_breaks_the_signature(field: str) -> None:
    signer, verifier = signer_and_verifier()
    signed = signer.sign(receipt())
    if field == "option_digest":
        signed.option_digest = option_digest("v-1", "b")
    elif field == "received_at":
        signed.received_at.FromMilliseconds(1_700_000_000_001)
    elif field == "key_id":
        signed.key_id = "r2"
    else:
        setattr(signed, field, "forged")
    with pytest.raises(InvalidReceipt):
        verifier.verify(signed)


def test_a_receipt_from_another_key_is_refused() -> None:
    signer, _ = signer_and_verifier()
    _, other_verifier = signer_and_verifier()
    with pytest.raises(InvalidReceipt):
        other_verifier.verify(signer.sign(receipt()))


def test_the_digest_binds_vote_and_option() -> None:
    assert option_digest("v-1", "a") != option_digest("v-1", "b")
    assert option_digest("v-1", "a") != option_digest("v-2", "a")


def test_the_digest_is_keyed_so_a_receipt_does_not_reveal_the_option() -> None:
    """Whoever holds a receipt but not the services' secret cannot find the option by
    hashing each of the poll's options, as they could with a plain hash."""
    signer, verifier = signer_and_verifier()
    issued = signer.issue(
        vote_pb2.VoteReceipt(vote_id="v-1", poll_id="p"), option_id="b", received_at_ms=1
    )
    verifier.verify(issued)
    assert verifier.names_option(issued, "b")
    assert not verifier.names_option(issued, "a")
    for option in ("a", "b", "c"):
        unkeyed = hashlib.sha256(f"v-1\x1f{option}".encode()).digest()
        assert issued.option_digest != unkeyed
        assert issued.option_digest != OptionDigests(b"a guessed secret").of("v-1", option)


@given(secret=st.binary(min_size=1, max_size=64), other=st.binary(min_size=1, max_size=64))
def test_only_the_same_secret_makes_the_same_digest(secret: bytes, other: bytes) -> None:
    digest = OptionDigests(secret).of("v-1", "a")
    assert (OptionDigests(other).of("v-1", "a") == digest) == (other == secret)
