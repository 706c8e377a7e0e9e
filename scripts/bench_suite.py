"""The benchmark suite (`make bench`): every benchmark script, one table, written to BENCHMARKS.md.

Each benchmark runs in a subprocess of its own (``--json``), so none shares an interpreter, a
peak RSS or a CPU-bound event loop with another: bench_peers.py (harvestkit, the naive curl_cffi
loop, the openai SDK and gpt4free on the same sandbox streams, in one run), bench_parsers.py,
bench_agents.py, bench_gateway.py --relay, bench_harvest.py,
bench_cache.py, bench_concurrency.py (N times), when present, bench_gateway.py (N times; its
text output is parsed), and bench_fleet.py (gateways on one Redis against one on files). The table goes to stdout and between the markers of BENCHMARKS.md; what
is outside the markers (the before-and-after notes) is kept. Exits 1 if a target is missed.

Usage: ``python scripts/bench_suite.py [--runs 5] [--output BENCHMARKS.md] [--skip NAME ...]``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
BEGIN = "<!-- bench-suite:begin: written by scripts/bench_suite.py, edit outside these markers -->"
END = "<!-- bench-suite:end -->"


@dataclass
class Row:
    """One line of the table; ``met`` is None where there is no target."""

    area: str
    measure: str
    result: str
    target: str = ""
    met: bool | None = None
    status: str = ""

    def verdict(self) -> str:
        return self.status or {None: "", True: "pass", False: "**MISSED**"}[self.met]


def run_script(name: str, *args: str, timeout: float = 900) -> str:
    """The stdout of ``scripts/<name>`` in a fresh interpreter; raises if it printed nothing."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / name), *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False,
    )  # fmt: skip
    print(f"  {name} {' '.join(args)}: {time.perf_counter() - started:.1f} s, exit {done.returncode}", file=sys.stderr)
    if not done.stdout.strip():
        raise RuntimeError(f"{name} printed nothing (exit {done.returncode}): {done.stderr.strip()[-400:]}")
    return done.stdout


def run_json(name: str, *args: str) -> dict[str, Any]:
    """The JSON object a benchmark script printed last with ``--json``."""
    return json.loads(run_script(name, *args, "--json").strip().splitlines()[-1])


STREAM_TARGET = 3.0  # harvestkit's chunks/s over the naive loop's, on every envelope
AGENTS_TARGET = 2.0
RELAY_TARGET = 1.25  # a stream through the gateway over the same stream read directly
RELAY_ROUNDS = 15  # a stream lasts ~40 ms: more rounds than the suite's runs, so one busy moment moves no median
FIRST_CHUNK_TODAY = 1.4 / 0.9  # harvestkit's warm first chunk over the naive loop's, 2026-11-22


def peers(runs: int) -> list[Row]:
    data = run_json("bench_peers.py", "--runs", str(runs))
    rows = []
    for envelope, stream in data["streams"].items():
        area = f"stream, {data['chunks']:,} chunks, {envelope} envelope"
        rounds = stream["rounds"]
        for name, rate in stream["throughput"].items():
            ratio, cpu = stream["ratio"][name], stream["cpu_us_per_chunk"][name]
            result = f"{rate:,.0f} ({ratio:.2f}x); {cpu:.2f} µs"
            ours = name == "harvestkit"
            if ours:
                each = [a / b for a, b in zip(rounds[name]["rates"], rounds["naive loop"]["rates"], strict=True)]
                result += f" (rounds: {min(each):.2f}x to {max(each):.2f}x)"
            rows.append(
                Row(area, f"{name}: chunks/s (x naive loop); CPU per chunk", result,
                    f">= {STREAM_TARGET:g}x" if ours else "", ratio >= STREAM_TARGET if ours else None)
            )  # fmt: skip
    naive_ms = data["first_chunk_ms"].get("naive loop")
    for name, ms in data["first_chunk_ms"].items():
        shakes = data["handshakes"][name]
        ours = name == "harvestkit"
        result = f"{ms:.1f} ms / {shakes}"
        met: bool | None = None
        if ours and naive_ms:
            result += f" ({ms / naive_ms:.2f}x the naive loop's first chunk)"
            met = shakes == 1 and ms / naive_ms <= FIRST_CHUNK_TODAY
        rows.append(
            Row("10 sequential requests", f"{name}: first chunk (warm) / TLS handshakes", result,
                f"1 handshake; first chunk <= {FIRST_CHUNK_TODAY:.2f}x the naive loop's (2026-11-22: 1.4 / 0.9 ms)" if ours else "",
                met)
        )  # fmt: skip
    for name, error in data["errors"].items():
        rows.append(Row("stream", name, f"not measurable: {error}", status="n/a"))
    for module, seconds in data["import_s"].items():
        ours = module.startswith("harvestkit")
        met = (seconds is not None and seconds <= 0.25) if ours else None
        result = "cannot be imported" if seconds is None else f"{seconds:.3f} s"
        rows.append(Row("import, fresh interpreter", f"import {module}", result, "<= 0.25 s" if ours else "", met))
    return rows


def parsers(runs: int) -> list[Row]:
    data = run_json("bench_parsers.py", "--runs", str(runs))
    rows = []
    for envelope, found in data["cpu_us_per_chunk"].items():
        naive = found["naive loop"]
        for name, micros in found.items():
            rows.append(Row(f"parsing in memory, {data['chunks']:,} chunks, {envelope}", f"{name}: CPU per chunk",
                            f"{micros:.2f} µs ({naive / micros:.2f}x the naive loop)"))  # fmt: skip
    return rows


def agents(runs: int) -> list[Row]:
    data = run_json("bench_agents.py", "--runs", str(runs), "--chunks", "20000")
    area = f"agents WebSocket, {data['chunks']:,} chunks"
    rows = []
    for name, rate in data["throughput"].items():
        ratio, cpu = data["ratio"][name], data["cpu_us_per_chunk"][name]
        ours = name == "harvestkit"
        rows.append(
            Row(area, f"{name}: chunks/s (x naive loop); CPU per chunk", f"{rate:,.0f} ({ratio:.2f}x); {cpu:.2f} µs",
                f">= {AGENTS_TARGET:g}x" if ours else "", ratio >= AGENTS_TARGET if ours else None)
        )  # fmt: skip
    return rows


def relay(runs: int) -> list[Row]:
    data = run_json("bench_gateway.py", "--relay", "20000", "--runs", str(max(runs, RELAY_ROUNDS)))
    rows = []
    for model, entry in data["models"].items():
        rows.append(
            Row(f"one {data['chunks']:,}-chunk stream", f"through `harvestkit serve` vs direct (median of {data['runs']} rounds): {model}",
                f"{entry['gateway_s']:.3f} s vs {entry['direct_s']:.3f} s ({entry['ratio']:.2f}x); "
                f"sent as {entry['chunks_sent']:,.0f} text chunks",
                f"<= {RELAY_TARGET:g}x", entry["ratio"] <= RELAY_TARGET)
        )  # fmt: skip
        rows.append(
            Row(f"one {data['chunks']:,}-chunk stream", f"through `harvestkit serve`, a reader that only counts the chunks: {model}",
                f"{entry['counted_s']:.3f} s ({entry['counted_ratio']:.2f}x the direct client)")
        )  # fmt: skip
        cpu = entry["cpu_us_per_chunk"]
        rows.append(
            Row(f"one {data['chunks']:,}-chunk stream", f"CPU a chunk: the gateway process, its reader, the direct client: {model}",
                f"{cpu['gateway process']:.2f} µs, {cpu['its reader']:.2f} µs, {cpu['direct client']:.2f} µs "
                f"(the gateway {cpu['gateway process'] / cpu['direct client']:.2f}x the direct client)")
        )  # fmt: skip
    return rows


def harvest(runs: int) -> list[Row]:
    data = run_json("bench_harvest.py", "--runs", str(runs))
    rows = []
    for name, entry in data.items():
        median = statistics.median(entry["timings"])
        rows.append(
            Row("cold harvest", name, f"{median:.2f} s (min {min(entry['timings']):.2f}, max {max(entry['timings']):.2f})",
                f"<= {entry['target']:g} s", median <= entry["target"])
        )  # fmt: skip
    return rows


def cache(runs: int) -> list[Row]:
    data = run_json("bench_cache.py", "--runs", str(runs))
    updates = f"{data['procs']} processes x {data['updates']} updates"
    return [
        Row("auth cache", "get (median of 5,000; p99)", f"{data['get_median_ms']:.3f} ms ({data['get_p99_ms']:.3f} ms)"),
        Row("auth cache", "update, one process, fsync'd (median of 100)", f"{data['update_median_ms']:.2f} ms"),
        Row("auth cache", "40 concurrent updates in one event loop (median of 5)", f"{data['async_updates_s'] * 1e3:.0f} ms"),
        Row("auth cache", f"{updates}: wall time", f"{data['wall_s']:.2f} s"),
        Row("auth cache", f"{updates}: lost (all runs)", str(data["lost"]), "0", data["lost"] == 0 and data["exit_codes"] == [0]),
    ]


def concurrency_rows(area: str, samples: list[dict[str, Any]]) -> list[Row]:
    """Errors summed over the runs; latencies and peak RSS: medians of the runs."""
    errors = sum(sample["errors"] for sample in samples)
    answered = [sample for sample in samples if sample["first_p50_ms"] is not None]
    p50 = statistics.median(sample["first_p50_ms"] for sample in answered) if answered else None
    p99 = statistics.median(sample["first_p99_ms"] for sample in answered) if answered else None
    rss = statistics.median(sample["peak_rss_mib"] for sample in samples)
    return [
        Row(area, f"errors ({len(samples)} runs)", str(errors), "0", errors == 0),
        Row(area, "first chunk p50 / p99", "no answer" if p50 is None else f"{p50:.0f} ms / {p99:.0f} ms"),
        Row(area, "peak RSS", f"{rss:.0f} MiB"),
    ]


def concurrency(runs: int) -> list[Row]:
    samples = [run_json("bench_concurrency.py") for _ in range(runs)]
    return concurrency_rows(f"{samples[0]['requests']} concurrent streams, client", samples)


def gateway_sample(text: str) -> dict[str, Any]:
    """The figures of bench_gateway.py's text output."""
    errors = re.search(r"^errors\s+(\d+)", text, re.MULTILINE)
    firsts = re.search(r"^first chunk\s+p50 (\d+) ms, p99 (\d+) ms", text, re.MULTILINE)
    rss = re.search(r"peak RSS ([\d.]+) MiB", text)
    requests = re.search(r"^requests\s+(\d+)", text, re.MULTILINE)
    if not (errors and firsts and rss and requests):
        raise RuntimeError(f"cannot read bench_gateway.py's output: {text[-300:]!r}")
    return {
        "requests": int(requests.group(1)),
        "errors": int(errors.group(1)),
        "first_p50_ms": float(firsts.group(1)),
        "first_p99_ms": float(firsts.group(2)),
        "peak_rss_mib": float(rss.group(1)),
    }


def gateway(runs: int) -> list[Row]:
    area = "concurrent streams, gateway"
    if not (SCRIPTS / "bench_gateway.py").exists():
        return [Row(area, "scripts/bench_gateway.py", "pending: the script is not there yet", "errors 0", status="pending")]
    samples = [gateway_sample(run_script("bench_gateway.py", "--client", "aiohttp")) for _ in range(runs)]
    return concurrency_rows(f"{samples[0]['requests']} concurrent streams, gateway", samples)


def fleet(runs: int) -> list[Row]:
    data = run_json("bench_fleet.py", "--runs", str(runs))
    area = f"fleet, {data['requests']} concurrent streams"
    rows = [
        Row(area, f"{name}: req/s; first chunk p50 / p99; Redis commands per request",
            f"{r['requests_per_s']:.0f}; {r['first_p50_ms']:.0f} ms / {r['first_p99_ms']:.0f} ms; "
            f"{r['redis_commands_per_request']:.1f}", "errors 0", r["errors"] == 0)
        for name, r in data["configs"].items()
    ]  # fmt: skip
    alone = data["one_at_a_time"]
    for model, added in data["store_adds_ms"].items():
        rows.append(
            Row("fleet, one request at a time", f"{model}: first chunk p50, Redis gateway - file gateway (file)",
                f"{added:+.2f} ms ({alone[f'{model} file first_p50_ms']:.1f} ms)",
                f"<= {data['target_ms']:g} ms", added <= data["target_ms"])
        )  # fmt: skip
    return rows


BENCHMARKS: dict[str, Callable[[int], list[Row]]] = {
    "peers": peers, "parsers": parsers, "agents": agents, "relay": relay, "harvest": harvest, "cache": cache,
    "concurrency": concurrency, "gateway": gateway, "fleet": fleet,
}  # fmt: skip


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def chromium() -> str:
    try:
        from harvestkit.harvester.browser import browser_version, find_browser

        executable = find_browser()
        return f"{browser_version(executable)[0]} ({executable})"
    except Exception as exc:  # noqa: BLE001 - the table still says why
        return f"not found ({exc})"


def machine() -> dict[str, str]:
    meminfo = Path("/proc/meminfo").read_text()
    memory = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1)) / 1024**2
    cpu = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
    return {
        "cores": f"{os.cpu_count()} ({cpu.group(1).strip() if cpu else platform.machine()})",
        "memory": f"{memory:.1f} GiB",
        "load average at start": " ".join(f"{load:.2f}" for load in os.getloadavg()),
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "Chromium": chromium(),
        "curl_cffi": version("curl_cffi"),
        "peers": f"openai {version('openai')} (httpx2 {version('httpx2')}), g4f {version('g4f')}",
    }


def table(rows: list[Row]) -> str:
    lines = ["| area | measure | result | target | status |", "|---|---|---|---|---|"]
    lines += [f"| {r.area} | {r.measure} | {r.result} | {r.target} | {r.verdict()} |" for r in rows]
    return "\n".join(lines)


def section(rows: list[Row], info: dict[str, str], command: str, runs: int, seconds: float) -> str:
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine_lines = "\n".join(f"- {name}: {value}" for name, value in info.items())
    return f"""{BEGIN}
## Latest run: {when}

Command: {command} ({seconds:.0f} s).
Median of {runs} unless the row says otherwise; the ratios come from the same run. The sandbox
runs in its own process; everything on 127.0.0.1.

{machine_lines}

{table(rows)}

How each row is measured: the docstrings of `scripts/bench_peers.py` (streams, sequential
requests, imports), `bench_parsers.py` (parsing in memory), `bench_agents.py`,
`bench_gateway.py --relay` (one stream through the gateway), `bench_harvest.py`,
`bench_cache.py`, `bench_concurrency.py`, `bench_gateway.py` (run with `--client aiohttp`,
so the load generator costs the shared CPU less) and `bench_fleet.py`.
{END}"""


def write(path: Path, text: str) -> None:
    """Replace the suite's section of ``path``, keeping everything around it."""
    old = path.read_text() if path.exists() else "# Benchmarks\n\n" + BEGIN + "\n" + END + "\n"
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        text = head + text + rest.split(END, 1)[1]
    else:
        text = old.rstrip() + "\n\n" + text + "\n"
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (median)")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--skip", action="append", choices=list(BENCHMARKS), default=[], help="leave a benchmark out")
    args = parser.parse_args()
    command = shlex.join([os.path.relpath(sys.executable, ROOT), os.path.relpath(__file__, ROOT), *sys.argv[1:]])
    command = f"`make bench`, which runs `{command}`" if os.environ.get("MAKELEVEL") else f"`{command}`"
    info = machine()
    started = time.perf_counter()
    rows: list[Row] = []
    for name, benchmark in BENCHMARKS.items():
        if name in args.skip:
            continue
        print(f"{name}:", file=sys.stderr)
        try:
            rows += benchmark(args.runs)
        except (RuntimeError, subprocess.TimeoutExpired, ValueError, KeyError) as exc:
            rows.append(Row(name, "benchmark", f"failed: {exc}"[:300], met=False))
    seconds = time.perf_counter() - started
    print(table(rows))
    write(args.output, section(rows, info, command, args.runs, seconds))
    print(f"\nwritten to {os.path.relpath(args.output)}", file=sys.stderr)
    return 1 if any(row.met is False for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
