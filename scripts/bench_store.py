#!/usr/bin/env python3
"""Benchmark the session stores: the Redis store against the file store, per operation.

Usage: python scripts/bench_store.py [--calls N] [--json]

For `get`, `update` (a cookie merge) and `refresh` of a fresh record, async and sync: the median
and p99 latency in milliseconds, and for Redis the round trips to the server per operation
(counted in redis-py: a burst of commands sent before the first reply is read is one round trip).
The sync twins run on the store's long-lived event loop thread, over connections kept open.
The Redis server is a local redis-server on a loopback port (needs `make redis`), with a password
and an fsync'd append-only file, in a temporary directory removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from redis.asyncio.connection import AbstractConnection  # noqa: E402
from redis_helpers import PASSWORD, RedisServer  # noqa: E402

from harvestkit.cache import AuthCache, Cookie, SessionRecord, open_store  # noqa: E402

SITE = "bench"


class RoundTrips:
    """Counts round trips of every redis-py asyncio connection while installed."""

    def __init__(self) -> None:
        self.count = 0
        self._replied = True
        self._send = AbstractConnection.send_packed_command
        self._read = AbstractConnection.read_response

    def install(self) -> None:
        counter = self

        async def send(conn: AbstractConnection, *args: Any, **kwargs: Any) -> Any:
            if counter._replied:
                counter.count += 1
                counter._replied = False
            return await counter._send(conn, *args, **kwargs)

        async def read(conn: AbstractConnection, *args: Any, **kwargs: Any) -> Any:
            counter._replied = True
            return await counter._read(conn, *args, **kwargs)

        AbstractConnection.send_packed_command = send
        AbstractConnection.read_response = read


def sample_record() -> SessionRecord:
    now = time.time()
    cookies = [Cookie(f"cookie{i}", "v" * 120, ".example.com", expires=now + 3600) for i in range(20)]
    return SessionRecord(
        SITE,
        harvested_at=now,
        expires_at=now + 3600,
        user_agent="Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0 Safari/537.36",
        client_hints={"sec-ch-ua": '"Chromium";v="131"', "sec-ch-ua-platform": '"Linux"'},
        cookies=cookies,
        api_key="csk-" + "k" * 48,
    )


def merge(record: SessionRecord | None) -> SessionRecord | None:
    return record and record.merge_cookies([Cookie("__cf_bm", "x" * 40, ".example.com", expires=time.time() + 1800)])


def stats(timings: list[float]) -> dict[str, float]:
    timings = sorted(timings)
    return {"median_ms": statistics.median(timings) * 1e3, "p99_ms": timings[int(len(timings) * 0.99)] * 1e3}


async def measure_async(op: Callable[[], Awaitable[Any]], calls: int, trips: RoundTrips) -> dict[str, float]:
    await op()  # connect
    timings, before = [], trips.count
    for _ in range(calls):
        start = time.perf_counter()
        await op()
        timings.append(time.perf_counter() - start)
    return stats(timings) | {"round_trips": (trips.count - before) / calls}


def measure_sync(op: Callable[[], Any], calls: int, trips: RoundTrips) -> dict[str, float]:
    timings, before = [], trips.count
    for _ in range(calls):
        start = time.perf_counter()
        op()
        timings.append(time.perf_counter() - start)
    return stats(timings) | {"round_trips": (trips.count - before) / calls}


def fresh() -> SessionRecord:
    raise AssertionError("the record is fresh: refresh must not harvest")


async def bench_async(store: Any, calls: int, trips: RoundTrips) -> dict[str, dict[str, float]]:
    results = {
        "get": await measure_async(lambda: store.get(SITE), calls, trips),
        "update": await measure_async(lambda: store.update(SITE, merge), calls, trips),
        "refresh": await measure_async(lambda: store.refresh(SITE, fresh), calls, trips),
    }
    if hasattr(store, "aclose"):
        await store.aclose()
    return results


def bench(store: Any, calls: int, trips: RoundTrips) -> dict[str, dict[str, float]]:
    store.put_sync(sample_record())
    results = asyncio.run(bench_async(store, calls, trips))
    results["get_sync"] = measure_sync(lambda: store.get_sync(SITE), calls, trips)
    results["update_sync"] = measure_sync(lambda: store.update_sync(SITE, merge), calls, trips)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    trips = RoundTrips()
    trips.install()
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis", password=PASSWORD).start()
        try:
            results = {
                "file": bench(AuthCache(Path(tmp) / "files"), args.calls, trips),
                "redis": bench(open_store(server.url), args.calls, trips),
            }
        finally:
            server.stop()
    for op in results["file"].values():
        op.pop("round_trips")
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'operation':<12} {'file p50':>9} {'file p99':>9} {'redis p50':>10} {'redis p99':>10} {'ratio':>6} {'RTs':>5}")
    for name, file_op in results["file"].items():
        redis_op = results["redis"][name]
        ratio = redis_op["median_ms"] / file_op["median_ms"]
        print(
            f"{name:<12} {file_op['median_ms']:>8.3f}ms {file_op['p99_ms']:>7.3f}ms {redis_op['median_ms']:>8.3f}ms "
            f"{redis_op['p99_ms']:>8.3f}ms {ratio:>5.2f}x {redis_op['round_trips']:>5.1f}"
        )


if __name__ == "__main__":
    main()
