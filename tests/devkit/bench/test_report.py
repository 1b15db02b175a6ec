"""Figures in the documents are generated from committed results, and each result is
traceable to the code that produced it (git is asked, so not all of these are unit tests)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.bench import report
from devkit.bench.environment import SOURCE


def test_every_quoted_figure_is_what_its_committed_file_says_and_names_its_code() -> None:
    outcome = report.run(check=True)
    assert outcome["untraceable"] == []
    assert outcome["changed"] == [], "run `python -m devkit bench report`"
    assert outcome["ok"]


@pytest.mark.unit
def test_the_documents_quote_the_benchmarks_only_through_generated_blocks() -> None:
    kinds = {
        name: {kind for kind, _ in report.blocks((SOURCE / name).read_text())}
        for name in report.DOCUMENTS
    }
    assert {"pipeline", "compare", "chaos", "restore"} <= kinds["README.md"]
    assert {
        "pipeline",
        "write",
        "read",
        "fanout",
        "fanout-capacity",
        "recount",
        "capacity",
        "before-after",
        "memory",
    } <= kinds["docs/capacity.md"]


@pytest.fixture
def result(tmp_path: Path) -> Iterator[Path]:
    folder = SOURCE / "bench" / "results"
    path = folder / f"test-report-{tmp_path.name}.json"
    yield path
    path.unlink(missing_ok=True)


def _write(path: Path, **figures: object) -> str:
    path.write_text(json.dumps(figures))
    return str(path.relative_to(SOURCE))


def _untracked(path: str) -> str:
    return f"{path}: not committed (is it ignored?), so a clone does not have it"


def test_a_file_naming_a_commit_without_its_benchmark_is_untraceable(result: Path) -> None:
    # 9efc5fb is a real commit of this repository from before bench/pipeline.py existed.
    cited = _write(result, benchmark="pipeline", commit="9efc5fb", dirty=False)
    assert report.problems(cited) == [
        _untracked(cited),
        f"{cited}: commit 9efc5fb has no code for benchmark 'pipeline'",
    ]


def test_a_file_naming_an_unknown_commit_or_a_dirty_tree_is_untraceable(result: Path) -> None:
    unknown = _write(result, benchmark="write", commit="0123abc", dirty=False)
    assert report.problems(unknown) == [
        f"{unknown}: names commit 0123abc, which this repository does not have"
    ]
    # 138d487 has bench/restore.py (before the layout split moved it to devkit/bench).
    measured_dirty = _write(result, benchmark="restore", commit="138d487", dirty=True)
    assert report.problems(measured_dirty) == [
        _untracked(measured_dirty),
        f"{measured_dirty}: measured on a dirty tree at 138d487",
    ]
    clean = _write(result, benchmark="restore", commit="138d487", dirty=False)
    assert report.problems(clean) == [_untracked(clean)]  # written here, never committed


@pytest.mark.unit
def test_a_block_is_regenerated_from_its_file_and_links_from_where_the_document_is(
    result: Path,
) -> None:
    cited = _write(
        result,
        benchmark="recount",
        commit="138d487",
        votes=1000,
        ledger_shards=16,
        recount_seconds=1.5,
        recount_votes_per_s=666.7,
        command="python -m devkit bench recount",
    )
    text = f"before\n<!-- report:recount {cited} -->\nold figures\n<!-- /report -->\nafter\n"
    generated = report.render(text, relative_to=SOURCE / "docs")
    assert "old figures" not in generated
    assert "A recount of 1,000 votes over 16 ledger shards took 1.5 s" in generated
    assert f"](../{cited})" in generated
    assert generated.startswith("before\n<!-- report:recount ")
    assert generated.endswith("<!-- /report -->\nafter\n")
    assert report.render(generated, relative_to=SOURCE / "docs") == generated
