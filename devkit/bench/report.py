"""``devkit bench report``: the documents' figures, generated from committed results.

README.md and docs/capacity.md quote benchmark figures only inside generated blocks::

    <!-- report:KIND bench/results/FILE.json [more files] -->
    ...generated...
    <!-- /report -->

``devkit bench report`` rewrites every block from the files it names; ``--check``
changes nothing and exits 1 if a block is not what its files say. The traceability test
(tests/devkit/bench/test_report.py) also holds each file to the commit it names: that
commit must exist and contain the benchmark's code, and the tree must not have been
dirty.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devkit.bench.environment import SOURCE
from voting.config import GatewaySettings

DOCUMENTS = ("README.md", "docs/capacity.md")
BLOCK = re.compile(
    r"(?P<open><!-- report:(?P<kind>[a-z-]+) (?P<files>[^>]+?) -->\n)"
    r"(?P<body>.*?)"
    r"(?P<close><!-- /report -->)",
    re.DOTALL,
)


def load(path: str) -> dict[str, Any]:
    figures: dict[str, Any] = json.loads((SOURCE / path).read_text())
    return figures


def commit_of(figures: dict[str, Any]) -> str:
    return str(figures.get("commit") or figures["machine"]["commit"])


def dirty(figures: dict[str, Any]) -> bool:
    about = figures.get("machine", {})
    return bool(figures.get("dirty", about.get("dirty", about.get("uncommitted_changes", True))))


def blocks(text: str) -> list[tuple[str, list[str]]]:
    return [(m["kind"], m["files"].split()) for m in BLOCK.finditer(text)]


def _n(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _spread(limit: dict[str, Any], unit: str = "/s") -> str:
    return f"{_n(limit['median'])}{unit} (windows {_n(limit['min'])} to {_n(limit['max'])})"


def _source(files: list[str], figures: list[dict[str, Any]]) -> str:
    cited = "; ".join(
        f"[{Path(f).name}]({f}) at {commit_of(d)} (`{d.get('command', 'see the file')}`)"
        for f, d in zip(files, figures, strict=True)
    )
    return f"Source: {cited}."


def pipeline(files: list[str], figures: list[dict[str, Any]]) -> str:
    (r,) = figures
    limits, ratios = r["limits"], r["ratios"]
    p = r["profile"]
    rows = [
        "| Figure | Value | Its limit, same run (median of windows, spread) |",
        "| --- | --- | --- |",
        f"| votes counted end to end (decided, in DynamoDB and Redis) | "
        f"{_n(r['e2e_votes_per_s'])} votes/s | raw DynamoDB Local ledger writes "
        f"{_spread(limits['raw_dynamodb_writes_per_s'])}: ratio "
        f"{ratios['e2e_to_raw_dynamodb_writes']} |",
        f"| votes acknowledged (held back to a backlog of {_n(p['max_backlog'])}) | "
        f"{_n(r['acked_votes_per_s'])} votes/s | bare batch server "
        f"{_spread(limits['bare_batch_server_votes_per_s'])} |",
        f"| ack latency per `CastVotes` call of {p['batch']} | p50 {_n(r['ack_p50_ms'])} ms, "
        f"p99 {_n(r['ack_p99_ms'])} ms | |",
        f"| vote to visible in a pushed snapshot, at saturation | "
        f"p50 {_n(r['visible_p50_ms'])} ms, p99 {_n(r['visible_p99_ms'])} ms | |",
        f"| push latency, {p['watchers']} watchers | p50 {_n(r['push_p50_ms'])} ms, "
        f"p99 {_n(r['push_p99_ms'])} ms | bare gRPC broadcast p99 "
        f"{_n(limits['bare_grpc_broadcast']['p99_ms'], 1)} ms |",
        f"| `GetResults` calls/s (64 in flight) | "
        f"{_spread(limits['query_get_results_per_s'])} | bare gRPC unary "
        f"{_spread(limits['bare_grpc_unary_per_s'])} |",
        f"| exact (FINAL == truth, recount == live count) | {str(r['exact']).lower()} | |",
    ]
    return "\n".join([*rows, "", _source(files, figures)])


def compare(files: list[str], figures: list[dict[str, Any]]) -> str:
    (r,) = figures
    load_ = r["compare_load"]

    def reads(design: str) -> str:
        got = r.get(f"{design}_reads") or {}
        return f"{_n(got.get('reads_per_s', 0))} reads/s, p99 {_n(got.get('p99_ms', 0))} ms"

    rows = [
        f"| Votes counted per second | quiet | beside heavy readers "
        f"({load_['readers_in_flight']} GetResults in flight) | exact |",
        "| --- | --- | --- | --- |",
        f"| CQRS (this system) | {_n(r['cqrs_counted_per_s_quiet'])} | "
        f"{_n(r['cqrs_counted_per_s_heavy_reads'])} ({reads('cqrs')}) | "
        f"{str(r['cqrs_exact']).lower()} |",
        f"| single model (transactions with counters, one table) | "
        f"{_n(r['baseline_counted_per_s_quiet'])} | "
        f"{_n(r['baseline_counted_per_s_heavy_reads'])} ({reads('baseline')}) | "
        f"{str(r['baseline_exact']).lower()} |",
        f"| CQRS / single model | {r['ratios']['cqrs_to_baseline_counted_quiet']} | "
        f"{r['ratios']['cqrs_to_baseline_counted_heavy_reads']} | |",
        "",
        f"Each run: {load_['seconds']:g} s of `CastVotes` of {load_['batch']}, "
        f"{load_['lanes']} in flight, {load_['repeat_ratio']:.0%} repeat voters, the same "
        f"load generator; counted = {load_['counted']}. Runs in this order, each drained, "
        f"closed and checked before the next: {', '.join(r['runs_order'])}.",
    ]
    return "\n".join([*rows, "", _source(files, figures)])


def write(files: list[str], figures: list[dict[str, Any]]) -> str:
    (r,) = figures
    cpu, ratios = r["cpu_us_per_vote"], r["ratios"]
    rows = [
        "| Stage | Rate | CPU of its process | Anchor, same run | Anchor's CPU | Ratio |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| command service, `CastVotes` of 1000, 4 in flight | "
        f"{_n(r['ingest_bulk_votes_per_s'])} votes/s | {_n(cpu['command_bulk'])} µs/vote | "
        f"bare batch server {_n(r['bare_batch_server_votes_per_s'])} votes/s | "
        f"{_n(cpu['bare_bulk'])} µs/vote | {ratios['castvotes_to_bare_batch_server']} |",
        f"| command service, `CastVote`, 64 in flight | "
        f"{_n(r['ingest_unary_votes_per_s'])} votes/s (p50 {_n(r['ack_p50_ms'])} ms, "
        f"p99 {_n(r['ack_p99_ms'])} ms) | {_n(cpu['command_unary'])} µs/vote | "
        f"bare unary echo {_n(r['bare_unary_per_s'])} calls/s | "
        f"{_n(cpu['bare_unary'])} µs/call | {ratios['castvote_to_bare_unary']} |",
        f"| dedup worker, on that backlog | {_n(r['worker_votes_per_s'])} votes/s | "
        f"{_n(r['worker_cpu_us_per_record'])} µs/record "
        f"({_n(r['worker_records_per_cpu_s'])} records per CPU-second) | raw ledger writes "
        f"{_spread(r['raw_dynamodb_writes_per_s'])} | | "
        f"{ratios['worker_to_raw_dynamodb']} |",
    ]
    return "\n".join([*rows, "", _source(files, figures)])


def read(files: list[str], figures: list[dict[str, Any]]) -> str:
    (r,) = figures
    rows = [
        "| Read side | Figure |",
        "| --- | --- |",
        f"| vote to visible, unloaded | p50 {_n(r['visible_p50_ms'])} ms, "
        f"p99 {_n(r['visible_p99_ms'])} ms |",
        f"| `WatchResults` followers per query process, 10 updates/s, push p99 < 100 ms | "
        f"{_n(r['subscribers_per_process_10hz'])} (bare grpc.aio: "
        f"{_n(r['raw_subscribers_per_process_10hz'])}) |",
        f"| the same at 1 update/s | {_n(r['subscribers_per_process_1hz'])} |",
    ]
    return "\n".join([*rows, "", _source(files, figures)])


def sse(files: list[str], figures: list[dict[str, Any]]) -> str:
    (r,) = figures
    rows = [
        "| Followers per process, push p99 < 100 ms | 10 updates/s | 1 update/s |",
        "| --- | --- | --- |",
        f"| gateway, SSE | {_n(r['sse_followers_per_process_10hz'])} | "
        f"{_n(r['sse_followers_per_process_1hz'])} |",
        f"| query service, `WatchResults` | {_n(r['grpc_followers_per_process_10hz'])} | "
        f"{_n(r['grpc_followers_per_process_1hz'])} |",
    ]
    floors = [
        f"{name} at {hz}/s"
        for name in ("sse", "grpc")
        for hz in (10, 1)
        if r.get(f"{name}_ramp_exhausted_{hz}hz")
    ]
    if floors:
        rows += ["", f"The ramp ran out of steps before the limit ({', '.join(floors)}): floors."]
    return "\n".join([*rows, "", _source(files, figures)])


def recount(files: list[str], figures: list[dict[str, Any]]) -> str:
    (r,) = figures
    return (
        f"A recount of {_n(r['votes'])} votes over {r['ledger_shards']} ledger shards took "
        f"{r['recount_seconds']} s ({_n(r['recount_votes_per_s'])} votes/s).\n\n"
        + _source(files, figures)
    )


def restore(files: list[str], figures: list[dict[str, Any]]) -> str:
    (r,) = figures
    start, checkpoint = r["from_start"], r["from_checkpoint"]
    return (
        f"A partition whose changelog holds {_n(r['changelog_records'])} records "
        f"({start['closed_polls']} closed polls, their tombstones, and "
        f"{_n(r['live_voters'])} live voters) restores in {start['seconds']} s from its start "
        f"and in {checkpoint['seconds']} s from a checkpoint.\n\n" + _source(files, figures)
    )


def chaos(files: list[str], figures: list[dict[str, Any]]) -> str:
    rows = [
        "| seed | faults | capacity / load (votes/s) | acknowledged | lost | double counted | "
        "wrong vote kept | refused but appended | live == FINAL | statuses == FINAL | "
        "writes / reads unavailable | reads while writes down / writes while reads down | "
        "commit |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for path, r in zip(files, figures, strict=True):
        yes = {True: "yes", False: "**no**"}
        rows.append(
            f"| [{r['seed']}]({path}) | {len(r['faults'])} | "
            f"{_n(r['capacity_votes_per_s'])} / {_n(r['load_votes_per_s'])} | "
            f"{_n(r['acknowledged'])} ({_n(r['voters_counted'])} voters) | {r['lost']} | "
            f"{r['double_counted']} | {r['wrong_vote_kept']} | {r['refused_appended']} | "
            f"{yes[r['live_matches_final']]} | {yes[r['status_matches_final']]} | "
            f"{_n(r['write_unavailable_s'])} s / {_n(r['read_unavailable_s'])} s | "
            f"{_n(r['reads_served_while_writes_down'])} / "
            f"{_n(r['writes_accepted_while_reads_down'])} | {commit_of(r)} |"
        )
    return "\n".join(rows)


def _ceil(x: float) -> int:
    return math.ceil(x - 1e-9)


VOTES_PER_S = 250_000
FOLLOWERS = 1_000_000
HEADROOM = 1.4  # peaks and rolling restarts


def capacity(files: list[str], figures: list[dict[str, Any]]) -> str:
    """The deployment for the targets, computed from the per-process figures: files are
    a pipeline, a write and a fanout result, in that order."""
    pipe, write_, fan = figures
    bulk = 1e6 / write_["cpu_us_per_vote"]["command_bulk"]
    unary = 1e6 / write_["cpu_us_per_vote"]["command_unary"]
    worker = write_["worker_records_per_cpu_s"]
    projector_cpu = pipe["processes"]["projector"]["cpu_s"]
    projector = pipe["votes_accepted"] / projector_cpu if projector_cpu else 0.0
    commands = _ceil(VOTES_PER_S / bulk * HEADROOM)
    workers = _ceil(VOTES_PER_S / worker * HEADROOM)
    partitions = 2 ** _ceil(math.log2(2 * workers))
    projectors = _ceil(VOTES_PER_S / projector * HEADROOM)
    query_1hz = fan["query_max_followers_1hz"]
    query_10hz = fan["query_max_followers_10hz"]
    sse_1hz = fan["gateway_max_followers_1hz"]
    sse_10hz = fan["gateway_max_followers_10hz"]
    rows = [
        "| Part | Measured per process (this box) | Per CPU-second "
        "| For 250k votes/s and 1M followers |",
        "| --- | --- | --- | --- |",
        f"| command service, `CastVotes` | {_n(write_['ingest_bulk_votes_per_s'])} votes/s | "
        f"{_n(bulk)} votes | {commands} processes of one core (x{HEADROOM} headroom) |",
        f"| command service, unary `CastVote` | {_n(write_['ingest_unary_votes_per_s'])} votes/s | "
        f"{_n(unary)} votes | {_ceil(VOTES_PER_S / unary * HEADROOM)} processes if every vote "
        "came unary: batch at the edge |",
        f"| dedup worker | {_n(write_['worker_votes_per_s'])} votes/s (DynamoDB Local's rate) | "
        f"{_n(worker)} records | {workers} processes; `votes` needs {partitions} partitions "
        "(each worker one at least, twice that to grow) |",
        f"| projector | kept up in the pipeline run | {_n(projector)} votes | "
        f"{projectors} processes |",
        f"| query service, `WatchResults` (relays) | {_served(query_10hz, 'streams')} at "
        f"10/s, {_served(query_1hz, 'streams')} at 1/s | "
        f"{_n(fan['query_pushes_per_cpu_s'])} pushes | "
        f"one stream per gateway and watched poll, not per follower |",
        f"| gateway, SSE | {_served(sse_10hz, 'followers')} at 10/s, "
        f"{_served(sse_1hz, 'followers')} at 1/s | "
        f"{_n(fan['gateway_pushes_per_cpu_s'])} pushes | "
        f"{_ceil(FOLLOWERS / max(sse_1hz, 1) * HEADROOM)} processes at 1/s, "
        f"{_ceil(FOLLOWERS / max(sse_10hz, 1) * HEADROOM)} at 10/s (as measured here; "
        "by CPU and with a CDN: the table below) |",
    ]
    return "\n".join([*rows, "", _source(files, figures)])


def before_after(files: list[str], figures: list[dict[str, Any]]) -> str:
    """Two ``bench write`` runs back to back: before and after a change of the code."""
    before, after = figures

    def row(label: str, get: Callable[[dict[str, Any]], float], unit: str) -> str:
        b, a = get(before), get(after)
        digits = 3 if max(a, b) < 10 else 0
        return f"| {label} | {_n(b, digits)}{unit} | {_n(a, digits)}{unit} | {a / b:.2f} |"

    rows = [
        f"| `bench write`, back to back | before ({commit_of(before)}) | "
        f"after ({commit_of(after)}) | after / before |",
        "| --- | --- | --- | --- |",
        row(
            "command CPU per vote, `CastVotes`",
            lambda r: r["cpu_us_per_vote"]["command_bulk"],
            " µs",
        ),
        row(
            "command CPU per vote, `CastVote`",
            lambda r: r["cpu_us_per_vote"]["command_unary"],
            " µs",
        ),
        row("worker CPU per decided record", lambda r: r["worker_cpu_us_per_record"], " µs"),
        row(
            "`CastVotes` / bare batch server",
            lambda r: r["ratios"]["castvotes_to_bare_batch_server"],
            "",
        ),
        row("`CastVote` / bare unary echo", lambda r: r["ratios"]["castvote_to_bare_unary"], ""),
    ]
    return "\n".join([*rows, "", _source(files, figures)])


def memory(files: list[str], figures: list[dict[str, Any]]) -> str:
    (r,) = figures
    rate = _n(r["votes_per_s"])
    rows = [
        f"| Kept per vote in Redis | bytes a vote (measured) | TTL | at {rate} votes/s |",
        "| --- | --- | --- | --- |",
        f"| shared request id (command service) | {_n(r['request_id_bytes_per_vote'])} | "
        f"{_n(r['request_id_ttl_s'])} s | {_n(r['request_ids_gib_at_rate'])} GiB, "
        f"{rate} writes/s inside one script call per batch |",
        f"| vote status for `GetVoteStatus` (projector) | {_n(r['status_bytes_per_vote'])} | "
        f"{_n(r['status_ttl_s'])} s | {_n(r['statuses_gib_at_rate'])} GiB, "
        f"{_n(r['status_writes_per_s_at_rate'])} SETs/s |",
    ]
    return "\n".join([*rows, "", _source(files, figures)])


def fanout(files: list[str], figures: list[dict[str, Any]]) -> str:
    """Per kind and rate: the largest step served, the latency there, CPU per push."""
    (r,) = figures
    names = {
        "gateway": "gateway, SSE",
        "bare_sse": "bare stdlib asyncio SSE broadcast",
        "query": "query service, `WatchResults`",
        "bare_grpc": "bare grpc.aio broadcast",
    }
    rows = [
        "| Server (one process) | updates/s | followers served (largest step) | "
        "p50 / p99 there (ms) | delivered | pushes per CPU-second | RSS (MiB) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for kind, rates in r["steps"].items():
        for hz, steps in rates.items():
            served = [s for s in steps if s["served"]]
            at = served[-1] if served else steps[0]
            count = _n(at["followers"]) if served else f"none (at {_n(at['followers'])}: "
            if not served:
                count += f"p99 {_n(at['p99_ms'])} ms, {at['delivered_ratio']:.1%} delivered)"
            rows.append(
                f"| {names[kind]} | {hz.removesuffix('hz')} | {count} | "
                f"{_n(at['p50_ms'])} / {_n(at['p99_ms'])} | {at['delivered_ratio']:.1%} | "
                f"{_n(at['pushes_per_cpu_s'])} | {_n(at['rss_mib'])} |"
            )
    biggest = max(r["steps"]["gateway"]["1hz"][-1]["followers"], 1)
    ratio_g = r["gateway_to_bare_pushes_per_cpu_s"]
    ratio_q = r["query_to_bare_grpc_pushes_per_cpu_s"]
    rows += [
        "",
        f"At 10 updates/s and {_n(r['gateway_pushes_per_cpu_s_at_followers'])} followers "
        f"(the largest step both served), the gateway made {_n(r['gateway_pushes_per_cpu_s'])} "
        f"pushes per CPU-second against the bare broadcast's "
        f"{_n(r['bare_pushes_per_cpu_s'])} ({ratio_g:.2f}x); at "
        f"{_n(r['query_pushes_per_cpu_s_at_followers'])} streams the query service made "
        f"{_n(r['query_pushes_per_cpu_s'])} against bare grpc.aio's "
        f"{_n(r['bare_grpc_pushes_per_cpu_s'])} ({ratio_q:.2f}x). Gateway memory: "
        f"{r['rss_mb_per_1k_followers']} MiB per 1,000 followers (the ramp's last step: "
        f"{_n(biggest)}). {_n(r.get('gateway_join_at_followers', 0))} browsers connecting "
        f"at once all had the current snapshot within {_n(r.get('gateway_join_max_ms', 0))} "
        f"ms ({_n(r.get('query_join_max_ms', 0))} ms for as many `WatchResults` streams). "
        f"Served: every follower connected, none failed, at least "
        f"{r['served_fraction']:.1%} of (follower, version) pairs delivered, p99 at most "
        f"{_n(r['p99_limit_ms'])} ms from each version's publication.",
    ]
    return "\n".join([*rows, "", _source(files, figures)])


def _served(followers: int, noun: str) -> str:
    """A ramp's largest served step; 0 when even its first step was not."""
    return f"{_n(followers)} {noun}" if followers else "no step served"


def _processes(count: int) -> str:
    return f"{count} process" if count == 1 else f"{count} processes"


EDGES = 300  # CDN points of presence revalidating a poll's results: an assumption


def fanout_capacity(files: list[str], figures: list[dict[str, Any]]) -> str:
    """Push processes for a million followers, from a fan-out and a pipeline result."""
    fan, pipe = figures
    per_cpu = fan["gateway_pushes_per_cpu_s"]
    unary = pipe["limits"]["query_get_results_per_s"]["median"]
    rows = [
        "| 1M followers | 1 update/s | 10 updates/s |",
        "| --- | --- | --- |",
    ]
    by_box = [
        _ceil(FOLLOWERS / max(fan[f"gateway_max_followers_{hz}hz"], 1) * HEADROOM) for hz in (1, 10)
    ]
    # By CPU, but never more followers on one process than it may hold.
    cap = GatewaySettings().max_followers
    by_cpu = [
        max(_ceil(FOLLOWERS * hz / per_cpu * HEADROOM), _ceil(FOLLOWERS / cap)) for hz in (1, 10)
    ]
    cdn = [_ceil(EDGES * hz / unary * HEADROOM) for hz in (1, 10)]
    rows += [
        f"| SSE gateways, followers per process as measured on this box | {by_box[0]} | "
        f"{by_box[1]} |",
        f"| SSE gateways of one core, by CPU per push (followers on other machines; at most "
        f"{_n(cap)} a process) | {by_cpu[0]} | {by_cpu[1]} |",
        f"| pollers behind a CDN ({EDGES} edges, each revalidating once per version) | "
        f"{_n(EDGES * 1)} origin requests/s: {_processes(cdn[0])} | "
        f"{_n(EDGES * 10)} requests/s: {_processes(cdn[1])} |",
    ]
    return "\n".join([*rows, "", _source(files, figures)])


RENDERERS: dict[str, Callable[[list[str], list[dict[str, Any]]], str]] = {
    "fanout": fanout,
    "fanout-capacity": fanout_capacity,
    "pipeline": pipeline,
    "compare": compare,
    "write": write,
    "read": read,
    "sse": sse,
    "recount": recount,
    "restore": restore,
    "chaos": chaos,
    "capacity": capacity,
    "before-after": before_after,
    "memory": memory,
}


def render(text: str, *, relative_to: Path) -> str:
    """``text`` with every block regenerated; links are relative to the document."""

    def replace(match: re.Match[str]) -> str:
        files = match["files"].split()
        body = RENDERERS[match["kind"]](files, [load(f) for f in files])
        if relative_to != SOURCE:
            prefix = "../" * len(relative_to.relative_to(SOURCE).parts)
            body = body.replace("](bench/", f"]({prefix}bench/")
        return f"{match['open']}{body}\n{match['close']}"

    return BLOCK.sub(replace, text)


def problems(path: str) -> list[str]:
    """Why the figures in ``path`` cannot be traced to the code that produced them."""
    try:
        figures = load(path)
    except (OSError, ValueError) as exc:
        return [f"{path}: {exc}"]
    commit = commit_of(figures)
    found = []
    if not _git("ls-files", "--error-unmatch", path):
        found.append(f"{path}: not committed (is it ignored?), so a clone does not have it")
    if not _git("cat-file", "-e", f"{commit}^{{commit}}"):
        return [f"{path}: names commit {commit}, which this repository does not have"]
    name = figures.get("benchmark", "")
    if not any(_git("cat-file", "-e", f"{commit}:{where}/{name}.py") for where in CODE_HOMES):
        found.append(f"{path}: commit {commit} has no code for benchmark {name!r}")
    if dirty(figures):
        found.append(f"{path}: measured on a dirty tree at {commit}")
    return found


# Where a benchmark's module lived: bench/ before the layout split, devkit/bench/ after.
CODE_HOMES = ("devkit/bench", "bench")


def _git(*args: str) -> bool:
    done = subprocess.run(["git", *args], cwd=SOURCE, capture_output=True, check=False)
    return done.returncode == 0


def run(*, check: bool = False) -> dict[str, Any]:
    untraceable = [
        problem
        for name in DOCUMENTS
        for _, files in blocks((SOURCE / name).read_text())
        for f in files
        for problem in problems(f)
    ]
    for problem in untraceable:
        print(problem, file=sys.stderr)
    if untraceable:
        return {"benchmark": "report", "untraceable": untraceable, "changed": [], "ok": False}
    stale = []
    for name in DOCUMENTS:
        path = SOURCE / name
        text = path.read_text()
        generated = render(text, relative_to=path.parent)
        if generated != text:
            stale.append(name)
            if not check:
                path.write_text(generated)
    ok = not (check and stale) and not untraceable
    if check and stale:
        print(f"stale figures in {', '.join(stale)}: run `devkit bench report`", file=sys.stderr)
    return {
        "benchmark": "report",
        "documents": list(DOCUMENTS),
        "changed": stale,
        "untraceable": untraceable,
        "ok": ok,
    }
