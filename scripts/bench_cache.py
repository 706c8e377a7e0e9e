#!/usr/bin/env python3
"""Benchmark the auth cache: `get` latency, 40 concurrent `update`s in one event loop (what 40
Cloudflare chats merging their responses' cookies do), and locked updates from 8 processes at once.

Usage: python scripts/bench_cache.py [--gets N] [--procs P] [--updates U] [--runs R] [--json]
The multi-process updates run R times (wall time: the median; lost updates: the total).
Everything happens in a temporary directory that is removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harvestkit.cache import AuthCache, Cookie, SessionRecord


def sample_record() -> SessionRecord:
    now = time.time()
    cookies = [Cookie(f"cookie{i}", "v" * 120, ".example.com", expires=now + 3600) for i in range(20)]
    return SessionRecord(
        "bench",
        harvested_at=now,
        expires_at=now + 3600,
        user_agent="Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0 Safari/537.36",
        client_hints={"sec-ch-ua": '"Chromium";v="131"', "sec-ch-ua-mobile": "?0", "sec-ch-ua-platform": '"Linux"'},
        cookies=cookies,
        api_key="csk-" + "k" * 48,
    )


def bench_get(root: Path, calls: int) -> dict[str, float]:
    """Milliseconds: median and p99 of `get`, median of a one-process `update`."""
    cache = AuthCache(root)
    cache.put_sync(sample_record())
    timings = []
    for _ in range(calls):
        start = time.perf_counter()
        cache.get_sync("bench")
        timings.append(time.perf_counter() - start)
    timings.sort()
    updates = []
    for _ in range(100):
        start = time.perf_counter()
        cache.update_sync("bench", lambda r: r)
        updates.append(time.perf_counter() - start)
    return {
        "get_median_ms": statistics.median(timings) * 1e3,
        "get_p99_ms": timings[int(len(timings) * 0.99)] * 1e3,
        "update_median_ms": statistics.median(updates) * 1e3,
    }


def worker(root: str, updates: int, name: str) -> None:
    def bump(record: SessionRecord | None) -> SessionRecord:
        record = record or SessionRecord("counter", source="import")
        record.extra["counter"] = record.extra.get("counter", 0) + 1
        record.extra[name] = record.extra.get(name, 0) + 1
        return record

    cache = AuthCache(root)
    print("ready", flush=True)
    sys.stdin.readline()
    for _ in range(updates):
        cache.update_sync("counter", bump)


def bench_updates(root: Path, procs: int, updates: int) -> tuple[float, int, list[int]]:
    """(wall seconds, updates lost, worker exit codes) of ``procs`` processes updating at once."""
    command = [sys.executable, __file__, "--worker", str(root), str(updates)]
    workers = [
        subprocess.Popen([*command, f"w{i}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for i in range(procs)
    ]
    try:
        for proc in workers:
            assert proc.stdout.readline().strip() == "ready"
        start = time.perf_counter()
        for proc in workers:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        codes = [proc.wait(timeout=600) for proc in workers]
        wall = time.perf_counter() - start
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    final = AuthCache(root).get_sync("counter").extra.get("counter", 0)
    return wall, procs * updates - final, codes


def bench_async_updates(root: Path, tasks: int = 40) -> float:
    """Seconds for ``tasks`` concurrent ``await cache.update(...)`` of one record in one loop."""
    cache = AuthCache(root)
    cache.put_sync(sample_record())

    site = sample_record().site

    def touch(record: SessionRecord | None) -> SessionRecord | None:
        return record

    async def run() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(cache.update(site, touch) for _ in range(tasks)))
        return time.perf_counter() - started

    return asyncio.run(run())


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        worker(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gets", type=int, default=5000)
    parser.add_argument("--procs", type=int, default=8)
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="harvestkit-bench-") as tmp:
        result: dict[str, object] = bench_get(Path(tmp) / "cache", args.gets)
        result["async_updates_s"] = statistics.median(bench_async_updates(Path(tmp) / f"async{i}") for i in range(5))
        runs = [bench_updates(Path(tmp) / f"updates{i}", args.procs, args.updates) for i in range(args.runs)]
    walls = [wall for wall, _, _ in runs]
    total = args.procs * args.updates
    result.update(
        procs=args.procs, updates=args.updates, runs=args.runs, wall_s=statistics.median(walls),
        lost=sum(lost for _, lost, _ in runs), exit_codes=sorted({c for _, _, codes in runs for c in codes}),
    )  # fmt: skip
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"get ({args.gets} calls, record with 20 cookies): median {result['get_median_ms']:.3f} ms, "
        f"p99 {result['get_p99_ms']:.3f} ms"
    )
    print(f"update, one process (100 calls, fsync'd): median {result['update_median_ms']:.3f} ms")
    print(f"40 concurrent updates in one event loop: {result['async_updates_s']:.3f} s (median of 5)")
    print(
        f"{args.procs} processes x {args.updates} locked updates: wall {result['wall_s']:.2f} s"
        f"{f' (median of {args.runs})' if args.runs > 1 else ''}, {total / result['wall_s']:.0f} updates/s, "
        f"lost updates {result['lost']}, worker exit codes {result['exit_codes']}"
    )


if __name__ == "__main__":
    main()
