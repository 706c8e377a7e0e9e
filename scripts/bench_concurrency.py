"""Benchmark: N concurrent streamed chats through the client itself (no gateway) to the sandbox.

The sandbox runs in a process of its own, paced like a real model; a stand-in session for both
providers goes into a private cache first (tests/client_helpers.py's browserless harvester), and
harvesting is off. After one warm-up chat per model, all requests start at once, alternating
Cerebras and Cloudflare (its default generation, the agents WebSocket), in one event loop of this
process. Reported: errors (an exception, or an answer that is not the sandbox's reply ending with
``stop``; must be 0), first-chunk latency p50/p99, total time and this process's peak RSS (VmHWM).

Usage: ``python scripts/bench_concurrency.py [--requests 200] [--pace 0.005] [--max-connections N]
[--json]`` (``--max-connections``: the client setting, concurrent transfers per provider);
exits 1 on any error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from harvestkit.cache import AuthCache
from harvestkit.client import Cerebras, Cloudflare, HarvestkitError, aclose
from harvestkit.client.provider import Provider
from harvestkit.sandbox.process import SandboxProcess

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from client_helpers import StandInHarvester

MODELS: tuple[tuple[type[Provider], str], ...] = (
    (Cerebras, "gemma-4-31b"),
    (Cloudflare, "@cf/meta/llama-3.1-8b-instruct-fast"),
)


def rss_kib(field: str) -> int:
    """VmRSS or VmHWM of this process, in KiB."""
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    return int(match.group(1)) if match else 0


async def one(provider: type[Provider], model: str, index: int, **settings: Any) -> tuple[float, str | None]:
    """(seconds to the first text chunk, the error or None) of one streamed chat."""
    prompt = f"Benchmark question {index}"
    started = time.perf_counter()
    first, parts = 0.0, []
    try:
        async with provider.stream(prompt, model, **settings) as stream:
            async for event in stream:
                if isinstance(event, str):
                    first = first or time.perf_counter() - started
                    parts.append(event)
    except HarvestkitError as error:
        return first, f"{type(error).__name__}: {error}"
    text = "".join(parts)
    if not text.startswith(f"Sandbox reply to: {prompt}.") or stream.finish_reason != "stop":
        return first, f"unexpected answer ({stream.finish_reason}): {text[:60]!r}"
    return first, None


async def bench(requests: int, pace: float, max_connections: int | None = None) -> dict[str, Any]:
    settings = {} if max_connections is None else {"max_connections": max_connections}
    with SandboxProcess("--pace", str(pace)) as sandbox, tempfile.TemporaryDirectory(prefix="harvestkit-bench-") as home:
        os.environ.update(sandbox.env, HARVESTKIT_HOME=home, HARVESTKIT_NO_HARVEST="1")
        harvester = StandInHarvester(SimpleNamespace(env=sandbox.env))  # it only needs the variables
        for site in ("cerebras", "cloudflare"):
            await harvester(site, cache=AuthCache())
        for provider, model in MODELS:
            await one(provider, model, -1, **settings)
        idle = rss_kib("VmRSS")
        began = time.perf_counter()
        results = await asyncio.gather(*(one(*MODELS[i % len(MODELS)], i, **settings) for i in range(requests)))
        total = time.perf_counter() - began
        await aclose()
    errors = [error for _, error in results if error]
    firsts = sorted(first for first, error in results if not error)
    return {
        "requests": requests,
        "pace": pace,
        "errors": len(errors),
        "error_samples": errors[:5],
        "first_p50_ms": statistics.median(firsts) * 1000 if firsts else None,
        "first_p99_ms": firsts[max(0, round(0.99 * len(firsts)) - 1)] * 1000 if firsts else None,
        "total_s": total,
        "idle_rss_mib": idle / 1024,
        "peak_rss_mib": rss_kib("VmHWM") / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--pace", type=float, default=0.005, help="sandbox seconds between streamed chunks")
    parser.add_argument("--max-connections", type=int, help="the client's max_connections (default: its own)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = parser.parse_args()
    result = asyncio.run(bench(args.requests, args.pace, args.max_connections))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"requests     {result['requests']} concurrent through the client (sandbox pace {args.pace:g} s/chunk)")
        print(f"errors       {result['errors']}")
        for error in result["error_samples"]:
            print(f"  {error}")
        if result["first_p50_ms"] is not None:
            print(f"first chunk  p50 {result['first_p50_ms']:.0f} ms, p99 {result['first_p99_ms']:.0f} ms")
        print(f"total time   {result['total_s']:.2f} s")
        print(f"memory       peak RSS {result['peak_rss_mib']:.1f} MiB ({result['idle_rss_mib']:.1f} MiB before the load)")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
