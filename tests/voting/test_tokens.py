"""Voter tokens: only tokens signed by a trusted key, with the key's own algorithm, pass."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from devkit.tokens import TokenIssuer, generate_keypair, load_private_key
from voting.config import AuthSettings, SecuritySettings
from voting.errors import ConfigError
from voting.tokens import AdminGate, InvalidToken, NotPermitted, TokenVerifier, bearer

pytestmark = pytest.mark.unit


def keypair() -> tuple[ed25519.Ed25519PrivateKey, str]:
    private_pem, public_pem = generate_keypair()
    key = load_private_key(private_pem)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return key, public_pem.decode()


@pytest.fixture
def keys() -> tuple[TokenIssuer, TokenVerifier, AuthSettings]:
    key, public = keypair()
    auth = AuthSettings(jwt_public_keys=json.dumps({"k1": public}))
    issuer = TokenIssuer(key, kid="k1", issuer=auth.jwt_issuer, audience=auth.jwt_audience)
    return issuer, TokenVerifier.from_settings(auth), auth


def reason(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(InvalidToken) as caught:
        verifier.verify(token)
    return caught.value.reason


def test_a_token_round_trips_with_its_subject_and_scopes(
    keys: tuple[TokenIssuer, TokenVerifier, AuthSettings],
) -> None:
    issuer, verifier, _ = keys
    claims = verifier.verify(issuer.issue("alice", ["vote:p1", "read:*"]))
    assert claims.subject == "alice"
    assert claims.may("vote", "p1")
    assert not claims.may("vote", "p2")
    assert claims.may("read", "anything")
    assert not claims.admin


def test_expired_tokens_are_refused(keys: tuple[TokenIssuer, TokenVerifier, AuthSettings]) -> None:
    issuer, verifier, _ = keys
    old = issuer.issue("alice", ["vote:*"], ttl_s=60, now=time.time() - 3600)
    assert reason(verifier, old) == "TOKEN_EXPIRED"


def test_a_key_the_verifier_does_not_trust_is_refused(
    keys: tuple[TokenIssuer, TokenVerifier, AuthSettings],
) -> None:
    _, verifier, auth = keys
    stranger, _ = keypair()
    other_kid = TokenIssuer(stranger, kid="k2", issuer=auth.jwt_issuer, audience=auth.jwt_audience)
    assert reason(verifier, other_kid.issue("alice", [])) == "UNKNOWN_KEY"
    same_kid = TokenIssuer(stranger, kid="k1", issuer=auth.jwt_issuer, audience=auth.jwt_audience)
    assert reason(verifier, same_kid.issue("alice", [])) == "BAD_SIGNATURE"


def test_a_token_cannot_choose_how_it_is_checked(
    keys: tuple[TokenIssuer, TokenVerifier, AuthSettings],
) -> None:
    _, verifier, auth = keys
    claims = {
        "sub": "alice",
        "scope": "admin",
        "iat": int(time.time()),
        "exp": int(time.time()) + 60,
        "iss": auth.jwt_issuer,
        "aud": auth.jwt_audience,
    }
    # "alg": "none", no signature at all.
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": "k1"}).encode()).rstrip(
        b"="
    )
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    assert reason(verifier, f"{header.decode()}.{body.decode()}.") == "WRONG_ALGORITHM"
    # HS256 keyed with the public key's PEM: the classic algorithm confusion (built by
    # hand: PyJWT itself refuses to sign it).
    public_pem = json.loads(auth.jwt_public_keys)["k1"].encode()
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": "k1"}).encode()).rstrip(
        b"="
    )
    signed = header + b"." + body
    mac = base64.urlsafe_b64encode(hmac.new(public_pem, signed, hashlib.sha256).digest()).rstrip(
        b"="
    )
    assert reason(verifier, (signed + b"." + mac).decode()) == "WRONG_ALGORITHM"


def test_issuer_and_audience_must_match(
    keys: tuple[TokenIssuer, TokenVerifier, AuthSettings],
) -> None:
    _, verifier, auth = keys
    key, public = keypair()
    verifier = TokenVerifier.from_settings(AuthSettings(jwt_public_keys=json.dumps({"k1": public})))
    elsewhere = TokenIssuer(key, kid="k1", issuer="someone-else", audience=auth.jwt_audience)
    assert reason(verifier, elsewhere.issue("alice", [])) == "INVALID_TOKEN"
    for_others = TokenIssuer(key, kid="k1", issuer=auth.jwt_issuer, audience="other-app")
    assert reason(verifier, for_others.issue("alice", [])) == "INVALID_TOKEN"
    mine = TokenIssuer(key, kid="k1", issuer=auth.jwt_issuer, audience=auth.jwt_audience)
    assert verifier.verify(mine.issue("alice", [])).subject == "alice"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_garbage_is_refused_cleanly(garbage: str) -> None:
    _, public = keypair()
    verifier = TokenVerifier.from_settings(AuthSettings(jwt_public_keys=json.dumps({"k1": public})))
    with pytest.raises(InvalidToken):
        verifier.verify(garbage)


def test_p256_keys_verify_with_es256_only() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    auth = AuthSettings(jwt_public_keys=json.dumps({"ec": public_pem}))
    token = TokenIssuer(
        private, kid="ec", issuer=auth.jwt_issuer, audience=auth.jwt_audience
    ).issue("bob", [])
    assert TokenVerifier.from_settings(auth).verify(token).subject == "bob"


def test_keys_come_from_a_mounted_directory_too(tmp_path: Path) -> None:
    key, public = keypair()
    (tmp_path / "rot-2026.pub.pem").write_text(public)
    auth = AuthSettings(jwt_keys_dir=str(tmp_path))
    token = TokenIssuer(
        key, kid="rot-2026", issuer=auth.jwt_issuer, audience=auth.jwt_audience
    ).issue("c", [])
    assert TokenVerifier.from_settings(auth).verify(token).subject == "c"


def test_no_keys_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError):
        TokenVerifier.from_settings(AuthSettings())


def test_bearer_metadata() -> None:
    assert bearer([("authorization", "Bearer abc")]) == "abc"
    assert bearer([("authorization", b"bearer  xyz ")]) == "xyz"
    assert bearer([("x-other", "Bearer abc")]) is None
    assert bearer(None) is None


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ([("authorization", "Basic abc")], "MALFORMED_AUTHORIZATION"),
        ([("authorization", "Bearer")], "MALFORMED_AUTHORIZATION"),
        ([("authorization", "Bearer a"), ("authorization", "Bearer b")], "REPEATED_AUTHORIZATION"),
        ([("authorization", "Bearer a"), ("authorization", "Bearer a")], "REPEATED_AUTHORIZATION"),
    ],
)
def test_an_authorization_that_is_not_one_bearer_token_is_refused_not_ignored(
    metadata: list[tuple[str, str]], reason: str
) -> None:
    with pytest.raises(InvalidToken) as refused:
        bearer(metadata)
    assert refused.value.reason == reason


def test_the_expiry_leeway_is_a_setting(
    keys: tuple[TokenIssuer, TokenVerifier, AuthSettings],
) -> None:
    issuer, _, auth = keys
    assert auth.jwt_leeway_s == 30.0
    expired = issuer.issue("ada", ["vote:*"], ttl_s=-5)
    strict = TokenVerifier.from_settings(replace(auth, jwt_leeway_s=0.0))
    assert reason(strict, expired) == "TOKEN_EXPIRED"
    lenient = TokenVerifier.from_settings(replace(auth, jwt_leeway_s=60.0))
    assert lenient.verify(expired).subject == "ada"


def test_the_admin_gate(keys: tuple[TokenIssuer, TokenVerifier, AuthSettings]) -> None:
    issuer, _, auth = keys
    gate = AdminGate.from_settings(auth, SecuritySettings())
    gate.check([("authorization", f"Bearer {issuer.issue('ops', ['admin'])}")])
    with pytest.raises(NotPermitted):
        gate.check([("authorization", f"Bearer {issuer.issue('alice', ['vote:*'])}")])
    with pytest.raises(InvalidToken):
        gate.check([])
    with pytest.raises(ConfigError):
        AdminGate.from_settings(
            AuthSettings(mode="development"), SecuritySettings(environment="production")
        )
