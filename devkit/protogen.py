"""Generates the Python code for the contracts in proto/ (``make proto``).

The generated modules (messages, ``.pyi`` stubs, gRPC stubs) land in ``voting/v1/`` and
are never edited by hand. ``--check`` regenerates into a temporary directory and fails
when the committed files differ, which is how ``make lint`` catches stale stubs.
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PACKAGE_DIR = Path("voting") / "v1"
INIT_TEXT = '"""Generated from proto/voting/v1 by `make proto`. Do not edit."""\n'


def generate(out: Path) -> None:
    from grpc_tools import protoc  # noqa: PLC0415 - dev dependency, needed only here

    sources = sorted(
        str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PACKAGE_DIR).glob("*.proto")
    )
    well_known = str(resources.files("grpc_tools") / "_proto")
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    (out / PACKAGE_DIR / "__init__.py").write_text(INIT_TEXT)


def stale_files(committed: Path, fresh: Path) -> list[str]:
    names = {p.name for p in committed.glob("*.py*")} | {p.name for p in fresh.glob("*.py*")}
    return sorted(
        n
        for n in names
        if not (committed / n).exists()
        or not (fresh / n).exists()
        or not filecmp.cmp(committed / n, fresh / n, shallow=False)
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    proto = sub.add_parser("proto", help="regenerate voting/v1 from proto/, or check it")
    proto.add_argument("--out", type=Path, default=ROOT)
    proto.add_argument("--check", action="store_true", help="exit 1 if voting/v1 is stale")
    proto.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    if not args.check:
        for old in (args.out / PACKAGE_DIR).glob("*_pb2*.py*"):
            old.unlink()
        (args.out / PACKAGE_DIR).mkdir(parents=True, exist_ok=True)
        generate(args.out)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / PACKAGE_DIR).mkdir(parents=True)
        generate(Path(tmp))
        stale = stale_files(ROOT / PACKAGE_DIR, Path(tmp) / PACKAGE_DIR)
    if stale:
        print(f"generated code is stale, run `make proto`: {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0
