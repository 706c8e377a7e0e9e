"""Benchmark the fleet: gateways sharing one Redis store against one gateway on the file store.

    python scripts/bench_fleet.py [--requests 200] [--sequential 50] [--runs 3] [--pace 0.005] [--json]

Three configurations, each `harvestkit serve` in a subprocess against one sandbox subprocess:
one gateway on the file store, one gateway on a Redis store, and three gateways on that Redis
store (each with a home of its own, as on three hosts; requests are dealt to them in turn). The
sessions are the same records in both stores (tests/client_helpers.py's browserless harvester
fills the file store; they are copied into Redis); the gateways run with harvesting disabled.

For each: `--requests` concurrent streamed chats (alternating Cerebras and Cloudflare, plain
aiohttp clients, as `scripts/bench_gateway.py` does): requests/s and first-chunk p50/p99; then
`--sequential` streamed chats one at a time (first-chunk p50, no queueing: what the store adds
to one request). Redis commands per request come from the server's `INFO commandstats` (the
calls of every command but INFO, before and after the concurrent load, over the requests); a
pipelined transaction is one round trip but several commands, so this is an upper bound of the
round trips. The configurations take turns `--runs` times; each figure is the median.

Target: the shared store adds at most 1 ms to a request's first chunk at p50, judged where only
the store differs (one gateway on Redis against one on files, one request at a time); the
concurrent figures of three gateways against one also move with the CPU the two machines' worth
of gateway processes share here (2 cores for the sandbox, the gateways and the load). Exits 1 on
any error or a missed target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))
from bench_gateway import MODELS, one, raw_chat, start_gateway, start_sandbox, stop  # noqa: E402
from client_helpers import StandInHarvester  # noqa: E402
from redis_helpers import PASSWORD, RedisServer  # noqa: E402

from harvestkit.cache import AuthCache, open_store  # noqa: E402

TARGET_MS = 1.0
CONFIGS = {"file x1": ("file", 1), "redis x1": ("redis", 1), "redis x3": ("redis", 3)}


def commands(server: RedisServer) -> int:
    """Commands the server has run so far, INFO itself left out."""
    stats = server.command("INFO", "commandstats")
    return sum(value["calls"] for name, value in stats.items() if name != "cmdstat_info")


def drain(process: Any, into: list[str]) -> None:
    """Read a gateway's stderr in a thread (a full pipe would stall the gateway), keeping it."""
    threading.Thread(target=lambda: into.extend(process.stderr), daemon=True).start()


async def timed(chat: Any, model: str, index: int) -> tuple[float, str | None]:
    try:
        return await one(chat, model, index)
    except TimeoutError:
        return 0.0, "TimeoutError: no answer within 60 s"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(fraction * len(ordered)) - 1)]


async def measure(urls: list[str], requests: int, sequential: int, server: RedisServer | None) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=60)  # a stuck stream is an error, not a stuck benchmark
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
        chats = [raw_chat(session, url) for url in urls]
        for chat in chats:  # warm: connections, model lists
            for model in MODELS:
                await timed(chat, model, -1)
        before = commands(server) if server else 0
        began = time.perf_counter()
        results = await asyncio.gather(
            *(timed(chats[i % len(chats)], MODELS[i % len(MODELS)], i) for i in range(requests))
        )
        seconds = time.perf_counter() - began
        after = commands(server) if server else 0
        alone = [await timed(chats[i % len(chats)], MODELS[i % len(MODELS)], i) for i in range(sequential)]
    errors = [error for _, error in [*results, *alone] if error]
    firsts = [first for first, error in results if not error]
    return {
        "errors": len(errors),
        "error_samples": errors[:3],
        "requests_per_s": requests / seconds,
        "first_p50_ms": statistics.median(firsts) * 1000 if firsts else None,
        "first_p99_ms": percentile(firsts, 0.99) * 1000 if firsts else None,
        "sequential_first_p50_ms": statistics.median(f for f, e in alone if not e) * 1000,
        "redis_commands_per_request": (after - before) / requests if server else 0.0,
    }


async def run_config(kind: str, count: int, base_env: dict[str, str], home: Path, redis: RedisServer, args: Any) -> dict[str, Any]:
    gateways, logs = [], []
    try:
        for index in range(count):
            env = {**base_env, "HARVESTKIT_NO_HARVEST": "1"}
            if kind == "redis":
                host = home / f"host-{index}"
                host.mkdir(exist_ok=True)
                env |= {"HARVESTKIT_STORE": redis.url, "HARVESTKIT_HOME": str(host)}
            gateways.append(start_gateway(env))
            drain(gateways[-1][0], logs)
        result = await measure([url for _, url in gateways], args.requests, args.sequential, redis if kind == "redis" else None)
    finally:
        for process, _ in gateways:
            stop(process)
    return result | {"gateway_log": logs[-20:] if result["errors"] else []}


async def bench(args: Any) -> dict[str, Any]:
    sandbox, exports = start_sandbox(args.pace)
    try:
        with tempfile.TemporaryDirectory(prefix="harvestkit-bench-fleet-") as tmp:
            home = Path(tmp)
            os.environ.update(exports, HARVESTKIT_HOME=str(home / "files"))
            os.environ.pop("HARVESTKIT_STORE", None)
            redis = RedisServer(home / "redis", password=PASSWORD).start()
            try:
                harvester = StandInHarvester(SimpleNamespace(env=exports))  # it only needs the variables
                for site in ("cerebras", "cloudflare"):
                    await harvester(site, cache=AuthCache())
                shared = open_store(redis.url)
                for record in AuthCache().list_sync():
                    shared.put_sync(record)
                samples: dict[str, list[dict[str, Any]]] = {name: [] for name in CONFIGS}
                for _ in range(args.runs):
                    for name, (kind, count) in CONFIGS.items():
                        samples[name].append(await run_config(kind, count, dict(os.environ), home, redis, args))
            finally:
                redis.stop()
    finally:
        stop(sandbox)
    return {name: summary(runs) for name, runs in samples.items()}


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    figures = {key: statistics.median(run[key] for run in runs) for key in runs[0] if key not in ("errors", "error_samples", "gateway_log")}
    return figures | {"errors": sum(run["errors"] for run in runs), "error_samples": [s for run in runs for s in run["error_samples"]][:3],
                      "gateway_log": [line for run in runs for line in run["gateway_log"]][-20:]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--sequential", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pace", type=float, default=0.005)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    results = asyncio.run(bench(args))
    added = results["redis x1"]["sequential_first_p50_ms"] - results["file x1"]["sequential_first_p50_ms"]
    met = added <= TARGET_MS and not any(r["errors"] for r in results.values())
    if args.json:
        print(json.dumps({"configs": results, "store_adds_ms": added, "target_ms": TARGET_MS, "met": met,
                          "requests": args.requests, "sequential": args.sequential}))  # fmt: skip
        return 0 if met else 1
    print(f"{args.requests} concurrent streams, then {args.sequential} one at a time; median of {args.runs} runs")
    print(f"{'config':<9} {'req/s':>7} {'first p50':>10} {'first p99':>10} {'alone p50':>10} {'redis cmds/req':>15} {'errors':>7}")
    for name, r in results.items():
        print(
            f"{name:<9} {r['requests_per_s']:>7.1f} {r['first_p50_ms']:>8.0f}ms {r['first_p99_ms']:>8.0f}ms "
            f"{r['sequential_first_p50_ms']:>8.2f}ms {r['redis_commands_per_request']:>15.2f} {r['errors']:>7}"
        )
        for sample in r["error_samples"]:
            print(f"  {sample}")
        for line in r["gateway_log"]:
            print(f"  gateway: {line.rstrip()}")
    print(f"the shared store adds {added:+.2f} ms to one request's first chunk at p50 (target <= {TARGET_MS:g} ms): "
          f"{'pass' if met else 'MISSED'}")  # fmt: skip
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
