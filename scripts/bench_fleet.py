"""Benchmark the fleet: gateways sharing one Redis store against one gateway on the file store.

    python scripts/bench_fleet.py [--requests 200] [--sequential 50] [--runs 3] [--pace 0.005] [--json]

Three configurations, each `harvestkit serve` in a subprocess against one sandbox subprocess:
one gateway on the file store, one gateway on a Redis store, and three gateways on that Redis
store (each with a home of its own, as on three hosts; requests are dealt to them in turn). The
sessions are the same records in both stores (tests/client_helpers.py's browserless harvester
fills the file store; they are copied into Redis); the gateways run with harvesting disabled.

For each: `--requests` concurrent streamed chats (alternating Cerebras and Cloudflare, plain
aiohttp clients, as `scripts/bench_gateway.py` does): requests/s and first-chunk p50/p99. Redis
commands per request come from the server's `total_commands_processed` (`INFO stats`, before
and after the load, over the requests; a Lua script is one command, as it is one round trip). Then, one request at a time,
a gateway on files and one on Redis run side by side and take turns (the order alternating) on
`--sequential` rounds of each model: the first-chunk p50 of each, measured under the same load.
All of it `--runs` times; each figure is the median of the runs.

Target: the shared store adds at most 1 ms to a request's first chunk at p50, judged where only
the store differs (the side-by-side pair, one request at a time). The concurrent figures of three
gateways against one also move with the CPU they share here (2 cores for the sandbox, the
gateways, redis-server and the load). Exits 1 on any error or a missed target.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
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
    """Commands clients have sent the server so far (the commands a script runs are not counted)."""
    return server.command("INFO", "stats")["total_commands_processed"]


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


def gateway_env(kind: str, index: int, base_env: dict[str, str], home: Path, redis: RedisServer) -> dict[str, str]:
    env = {**base_env, "HARVESTKIT_NO_HARVEST": "1"}
    if kind == "redis":
        host = home / f"host-{index}"
        host.mkdir(exist_ok=True)
        env |= {"HARVESTKIT_STORE": redis.url, "HARVESTKIT_HOME": str(host)}
    return env


@contextlib.asynccontextmanager
async def gateways(kinds: list[str], base_env: dict[str, str], home: Path, redis: RedisServer,
                   logs: list[str]) -> AsyncIterator[list[Any]]:  # fmt: skip
    """A warm gateway of each kind ("file" or "redis"), as chats; stopped on the way out."""
    started = []
    timeout = aiohttp.ClientTimeout(total=60)  # a stuck stream is an error, not a stuck benchmark
    try:
        for index, kind in enumerate(kinds):
            started.append(start_gateway(gateway_env(kind, index, base_env, home, redis)))
            drain(started[-1][0], logs)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
            chats = [raw_chat(session, url) for _, url in started]
            for chat in chats:  # warm: connections, model lists
                for model in MODELS:
                    await timed(chat, model, -1)
            yield chats
    finally:
        for process, _ in started:
            stop(process)


async def concurrent(kind: str, count: int, base_env: dict[str, str], home: Path, redis: RedisServer,
                     requests: int) -> dict[str, Any]:  # fmt: skip
    """`requests` streams at once, dealt in turn to `count` gateways of `kind`."""
    logs: list[str] = []
    async with gateways([kind] * count, base_env, home, redis, logs) as chats:
        before = commands(redis)
        began = time.perf_counter()
        results = await asyncio.gather(
            *(timed(chats[i % count], MODELS[i % len(MODELS)], i) for i in range(requests))
        )
        seconds = time.perf_counter() - began
        after = commands(redis) - 1  # this INFO itself
    errors = [error for _, error in results if error]
    firsts = [first for first, error in results if not error]
    return {
        "errors": len(errors),
        "error_samples": errors[:3],
        "gateway_log": logs[-20:] if errors else [],
        "requests_per_s": requests / seconds,
        "first_p50_ms": statistics.median(firsts) * 1000 if firsts else None,
        "first_p99_ms": percentile(firsts, 0.99) * 1000 if firsts else None,
        "redis_commands_per_request": (after - before) / requests if kind == "redis" else 0.0,
    }


async def one_at_a_time(base_env: dict[str, str], home: Path, redis: RedisServer, rounds: int) -> dict[str, Any]:
    """A gateway on files and one on Redis, running side by side: for each model, one stream to
    each in turn (the order alternating), `rounds` times; the first-chunk p50 of each."""
    logs: list[str] = []
    firsts: dict[str, list[float]] = {}
    errors = []
    async with gateways(["file", "redis"], base_env, home, redis, logs) as (file_chat, redis_chat):
        for i in range(rounds):
            for model in MODELS:
                pair = [("file", file_chat), ("redis", redis_chat)]
                for kind, chat in pair if i % 2 else reversed(pair):
                    first, error = await timed(chat, model, i)
                    errors += [error] if error else []
                    firsts.setdefault(f"{model} {kind}", []).extend([] if error else [first])
    return {"errors": len(errors), "error_samples": errors[:3]} | {
        f"{name} first_p50_ms": statistics.median(values) * 1000 for name, values in firsts.items()
    }


def added_ms(alone: dict[str, Any]) -> dict[str, float]:
    """Per model: the Redis gateway's first-chunk p50 minus the file gateway's."""
    return {m: alone[f"{m} redis first_p50_ms"] - alone[f"{m} file first_p50_ms"] for m in MODELS}


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
                base = dict(os.environ)
                samples: dict[str, list[dict[str, Any]]] = {name: [] for name in CONFIGS}
                alone = []
                for _ in range(args.runs):
                    for name, (kind, count) in CONFIGS.items():
                        samples[name].append(await concurrent(kind, count, base, home, redis, args.requests))
                    alone.append(await one_at_a_time(base, home, redis, args.sequential))
            finally:
                redis.stop()
    finally:
        stop(sandbox)
    return {"configs": {name: summary(runs) for name, runs in samples.items()}, "one_at_a_time": summary(alone)}


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the runs' figures; errors summed, a few of their messages kept."""
    kept = ("errors", "error_samples", "gateway_log", "model")
    figures = {key: statistics.median(run[key] for run in runs) for key in runs[0] if key not in kept}
    return figures | {
        "errors": sum(run["errors"] for run in runs),
        "error_samples": [s for run in runs for s in run["error_samples"]][:3],
        "gateway_log": [line for run in runs for line in run.get("gateway_log", [])][-20:],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--sequential", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pace", type=float, default=0.005)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    results = asyncio.run(bench(args))
    configs, alone = results["configs"], results["one_at_a_time"]
    added = added_ms(alone)
    met = max(added.values()) <= TARGET_MS and not alone["errors"] and not any(r["errors"] for r in configs.values())
    if args.json:
        print(json.dumps(results | {"store_adds_ms": added, "target_ms": TARGET_MS, "met": met,
                                    "requests": args.requests, "sequential": args.sequential}))  # fmt: skip
        return 0 if met else 1
    print(f"{args.requests} concurrent streams; median of {args.runs} runs")
    print(f"{'config':<9} {'req/s':>7} {'first p50':>10} {'first p99':>10} {'redis cmds/req':>15} {'errors':>7}")
    for name, r in configs.items():
        print(
            f"{name:<9} {r['requests_per_s']:>7.1f} {r['first_p50_ms']:>8.0f}ms {r['first_p99_ms']:>8.0f}ms "
            f"{r['redis_commands_per_request']:>15.2f} {r['errors']:>7}"
        )
        for line in [*r["error_samples"], *(f"gateway: {line.rstrip()}" for line in r["gateway_log"])]:
            print(f"  {line}")
    print(f"one at a time, {args.sequential} rounds, a file and a Redis gateway side by side (errors {alone['errors']}):")
    for model, more in added.items():
        print(f"  {model}: first chunk p50 {alone[f'{model} file first_p50_ms']:.2f} ms (file), "
              f"{alone[f'{model} redis first_p50_ms']:.2f} ms (redis): {more:+.2f} ms")  # fmt: skip
    print(f"the shared store adds at most {max(added.values()):+.2f} ms to a request's first chunk at p50 "
          f"(target <= {TARGET_MS:g} ms): {'pass' if met else 'MISSED'}")  # fmt: skip
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
