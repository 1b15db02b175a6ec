"""Development key material for the local stack: token and receipt signing keys.

Made once under ``<data dir>/keys`` and reused, so tokens minted with
``voting token issue`` keep working across restarts of ``voting up``. Never for
production: there, keys come from configuration or mounted secrets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from voting.tokens import generate_keypair

DEV_KEY_ID = "dev"


@dataclass(frozen=True)
class DevelopmentKeys:
    token_private: Path
    token_public: Path
    receipt_private: Path
    receipt_public: Path


def development_keys(directory: Path) -> DevelopmentKeys:
    directory.mkdir(parents=True, exist_ok=True)
    keys = DevelopmentKeys(
        token_private=directory / "token.pem",
        token_public=directory / "token.pub.pem",
        receipt_private=directory / "receipt.pem",
        receipt_public=directory / "receipt.pub.pem",
    )
    for private, public in (
        (keys.token_private, keys.token_public),
        (keys.receipt_private, keys.receipt_public),
    ):
        if not (private.exists() and public.exists()):
            private_pem, public_pem = generate_keypair()
            private.write_bytes(private_pem)
            private.chmod(0o600)
            public.write_bytes(public_pem)
    return keys
