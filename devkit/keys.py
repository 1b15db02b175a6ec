"""Development key material for the local stack: token and receipt signing keys, and
``devkit token issue``, which mints tokens with them.

Made once under ``<data dir>/keys`` and reused, so tokens minted with
``devkit token issue`` keep working across restarts of ``devkit up``. Never for
production: there, keys come from configuration or mounted secrets.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from devkit.tokens import TokenIssuer, generate_keypair, load_private_key
from voting.config import Settings
from voting.errors import ConfigError

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


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = sub.add_parser("token", help="development tokens")
    actions = token.add_subparsers(required=True, metavar="ACTION")
    issue = actions.add_parser("issue", help="mint a signed token (development keys by default)")
    issue.add_argument("--subject", required=True, help="the voter id (or a service's name)")
    issue.add_argument(
        "--scope",
        action="append",
        default=[],
        help="vote:<poll>, vote:*, read:<poll>, read:*, admin (repeatable)",
    )
    issue.add_argument("--ttl", type=float, default=3600.0, help="seconds until it expires")
    issue.add_argument("--key", type=Path, help="signing key (default: <data-dir>/keys/token.pem)")
    issue.add_argument("--kid", default="dev", help="key id in the token header")
    issue.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".voting"),
        help="the data directory of the stack the token is for (its keys are in keys/)",
    )
    issue.set_defaults(handler=_issue)


def _issue(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    path: Path = args.key or args.data_dir / "keys" / "token.pem"
    if not path.is_file():
        # Never new keys here: a token signed by keys no stack trusts fails everywhere.
        raise ConfigError(
            f"no signing key at {path}: pass the --data-dir of the stack the token is for "
            "(started with `devkit up --auth jwt`), or --key"
        )
    issuer = TokenIssuer(
        load_private_key(path.read_bytes()),
        kid=args.kid,
        issuer=settings.auth.jwt_issuer,
        audience=settings.auth.jwt_audience,
    )
    print(issuer.issue(args.subject, args.scope, ttl_s=args.ttl))
    return 0
