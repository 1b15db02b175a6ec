"""Signed voter tokens (JWT) and the keys that sign and verify them.

Tokens are signed with asymmetric keys (Ed25519, ``EdDSA``; or P-256, ``ES256``). Each
key has an id, carried in the token header as ``kid``: verifiers hold several public
keys at once, so a new signing key can be introduced before the old one is retired.
The verifier accepts only the algorithm that belongs to the key named by ``kid``, never
``none`` or an HMAC algorithm: a token cannot choose how it is checked.

Claims: ``sub`` (the voter id), ``scope`` (space separated: ``vote:<poll>``, ``vote:*``,
``read:<poll>``, ``read:*``, ``proxy:<poll>``, ``proxy:*``, ``admin``), ``exp``, ``iat``,
``iss``, ``aud``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from voting.config import AuthSettings, SecuritySettings
from voting.errors import ConfigError, VotingError

PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


class InvalidToken(VotingError):
    """The token is missing, malformed, expired, or not signed by a trusted key."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Claims:
    subject: str
    scopes: frozenset[str]
    expires_at: int

    @property
    def admin(self) -> bool:
        return "admin" in self.scopes

    def may(self, action: str, poll_id: str) -> bool:
        """Whether the scopes allow ``action`` ("vote" or "read") on ``poll_id``."""
        return bool({f"{action}:{poll_id}", f"{action}:*"} & self.scopes) or self.admin


def algorithm_for(key: PublicKey | PrivateKey) -> str:
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return "EdDSA"
    if (
        isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey)
        and key.curve.name == "secp256r1"
    ):
        return "ES256"
    raise ConfigError(f"unsupported token key type {type(key).__name__}: use Ed25519 or P-256")


class TokenVerifier:
    def __init__(
        self, keys: dict[str, PublicKey], *, issuer: str, audience: str, leeway_s: float = 30
    ) -> None:
        if not keys:
            raise ConfigError(
                "no token verification key: set VOTING_JWT_PUBLIC_KEYS or VOTING_JWT_KEYS_DIR"
            )
        self._keys = {kid: (key, algorithm_for(key)) for kid, key in keys.items()}
        self._issuer = issuer
        self._audience = audience
        self._leeway_s = leeway_s

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> TokenVerifier:
        return cls(
            load_public_keys(settings),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            leeway_s=settings.jwt_leeway_s,
        )

    def verify(self, token: str) -> Claims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("MALFORMED_TOKEN", f"malformed token: {exc}") from exc
        kid = header.get("kid")
        if not isinstance(kid, str) or kid not in self._keys:
            raise InvalidToken("UNKNOWN_KEY", "the token's key id is not trusted")
        key, algorithm = self._keys[kid]
        if header.get("alg") != algorithm:
            raise InvalidToken("WRONG_ALGORITHM", f"key {kid!r} signs with {algorithm} only")
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[algorithm],
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway_s,
                options={"require": ["exp", "iat", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("TOKEN_EXPIRED", "the token has expired") from exc
        except jwt.InvalidSignatureError as exc:
            raise InvalidToken("BAD_SIGNATURE", "the token's signature does not verify") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken("INVALID_TOKEN", f"the token is not valid: {exc}") from exc
        scope = claims.get("scope", "")
        if not isinstance(scope, str) or not isinstance(claims["sub"], str) or not claims["sub"]:
            raise InvalidToken("INVALID_TOKEN", "the token's sub and scope must be strings")
        return Claims(claims["sub"], frozenset(scope.split()), int(claims["exp"]))


def load_public_keys(settings: AuthSettings) -> dict[str, PublicKey]:
    """Keys from VOTING_JWT_PUBLIC_KEYS (JSON {kid: PEM}) and VOTING_JWT_KEYS_DIR
    (files ``<kid>.pub.pem``, e.g. a mounted Kubernetes secret)."""
    keys: dict[str, PublicKey] = {}
    pems: dict[str, str] = {}
    if settings.jwt_public_keys:
        try:
            raw = json.loads(settings.jwt_public_keys)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"VOTING_JWT_PUBLIC_KEYS is not JSON: {exc}") from exc
        pems.update({str(k): str(v) for k, v in raw.items()})
    if settings.jwt_keys_dir:
        for path in sorted(Path(settings.jwt_keys_dir).glob("*.pub.pem")):
            pems[path.name.removesuffix(".pub.pem")] = path.read_text()
    for kid, pem in pems.items():
        key = serialization.load_pem_public_key(pem.encode())
        if not isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
            raise ConfigError(f"token key {kid!r} is not Ed25519 or P-256")
        keys[kid] = key
    return keys


def verifier_for(auth: AuthSettings, security: SecuritySettings) -> TokenVerifier | None:
    """The token verifier every service checks callers with; None in development mode
    (anyone may do anything), which is refused unless VOTING_ENVIRONMENT=development."""
    if auth.mode != "development":
        return TokenVerifier.from_settings(auth)
    if not security.development:
        raise ConfigError("VOTING_AUTH_MODE=development needs VOTING_ENVIRONMENT=development")
    return None


def bearer(metadata: Any) -> str | None:
    """The token of the call's ``authorization: Bearer <token>`` entry; None without one.

    Raises InvalidToken for an entry that is not a bearer token, and for more than one
    entry: which of two tokens counts must never depend on an implementation's choice.
    """
    found = [value for key, value in metadata or () if key == "authorization"]
    if not found:
        return None
    if len(found) > 1:
        raise InvalidToken("REPEATED_AUTHORIZATION", "send one `authorization` entry, not several")
    value = found[0]
    text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    scheme, _, token = text.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("MALFORMED_AUTHORIZATION", "`authorization` must be `Bearer <token>`")
    return token.strip()


class NotPermitted(VotingError):
    """The token is valid but its scope does not allow the operation."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class AdminGate:
    """Lets through callers whose token has the admin scope (anyone in development mode)."""

    def __init__(self, verifier: TokenVerifier | None) -> None:
        self._verifier = verifier

    @classmethod
    def from_settings(cls, auth: AuthSettings, security: SecuritySettings) -> AdminGate:
        return cls(verifier_for(auth, security))

    def check(self, metadata: Any) -> None:
        """Raises InvalidToken (unauthenticated) or NotPermitted (not an admin)."""
        if self._verifier is None:
            return
        token = bearer(metadata)
        if token is None:
            raise InvalidToken("MISSING_TOKEN", "send `authorization: Bearer <token>` metadata")
        if not self._verifier.verify(token).admin:
            raise NotPermitted(
                "ADMIN_SCOPE_REQUIRED", "this operation needs a token with the admin scope"
            )
