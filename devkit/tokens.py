"""Minting tokens with a private key: development tokens (``devkit token issue``),
tests and tools. Production services only verify (``voting.tokens``); an identity
provider issues the tokens."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from voting.errors import ConfigError
from voting.tokens import PrivateKey, algorithm_for


class TokenIssuer:
    """Mints tokens with one private key (development tokens, tests, tools)."""

    def __init__(self, key: PrivateKey, *, kid: str, issuer: str, audience: str) -> None:
        self._key = key
        self._kid = kid
        self._algorithm = algorithm_for(key)
        self._issuer = issuer
        self._audience = audience

    def issue(
        self, subject: str, scopes: list[str], *, ttl_s: float = 3600, now: float | None = None
    ) -> str:
        issued = int(now if now is not None else time.time())
        claims: dict[str, Any] = {
            "sub": subject,
            "scope": " ".join(scopes),
            "iat": issued,
            "exp": issued + int(ttl_s),
            "iss": self._issuer,
            "aud": self._audience,
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(claims, self._key, algorithm=self._algorithm, headers={"kid": self._kid})


def generate_keypair() -> tuple[bytes, bytes]:
    """A new Ed25519 key pair as (private PEM, public PEM)."""
    private = ed25519.Ed25519PrivateKey.generate()
    return (
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )


def load_private_key(pem: bytes) -> PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        raise ConfigError("the signing key is not Ed25519 or P-256")
    return key
