"""``devkit token issue``: tokens signed by the keys of the stack they are for, or none."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from devkit.keys import development_keys
from voting.config import AuthSettings
from voting.tokens import TokenVerifier

ROOT = Path(__file__).resolve().parents[2]


def issue(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devkit", "token", "issue", "--subject", "ada", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # devkit is not installed: it is the repo's
        timeout=60,
        check=False,
    )


def test_without_the_stacks_keys_no_token_is_made_and_no_key_either(tmp_path: Path) -> None:
    result = issue("--scope", "vote:*", cwd=tmp_path)
    assert result.returncode == 1
    assert "no signing key at .voting/keys/token.pem" in result.stderr
    assert "--data-dir" in result.stderr
    assert not (tmp_path / ".voting").exists(), "no keys were made up"


def test_a_token_from_the_stacks_data_directory_verifies_with_its_keys(tmp_path: Path) -> None:
    keys = development_keys(tmp_path / "stack" / "keys")
    result = issue("--scope", "vote:*", "--data-dir", str(tmp_path / "stack"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    public = {"dev": keys.token_public.read_text()}
    verifier = TokenVerifier.from_settings(AuthSettings(jwt_public_keys=json.dumps(public)))
    assert verifier.verify(result.stdout.strip()).subject == "ada"
