"""Benchmark: the Cerebras client end to end against the sandbox, and its import time.

Through the sandbox's proxy and TLS (the sandbox in a process of its own), on the same 20,000-chunk Cerebras stream, median of N runs
taken in alternation:

* harvestkit: ``Cerebras.create_async_generator(...)`` counting text chunks;
* naive: a curl_cffi ``AsyncSession`` POST with ``stream=True``, ``aiter_lines()`` and
  ``json.loads`` on each ``data:`` line (what gpt4free's providers do).

The sandbox writes an unpaced stream in ~16 KiB pieces from pre-encoded chunks, so it
outruns both clients: what is measured is the client's work per chunk, not the server's.

Then: first-chunk latency of 10 sequential requests on a warm client and the TLS handshakes the
sandbox saw for them (target: none beyond the first connection), and ``import harvestkit.client``
in fresh interpreters (target <= 0.25 s, no browser library imported).

Usage: ``python scripts/bench_client.py [--chunks N] [--runs N]``; exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time

from curl_cffi.requests import AsyncSession
from harvestkit.client import Cerebras, aclose
from harvestkit.sandbox.process import SandboxProcess
from harvestkit.sandbox.shortcuts import sandbox_session, sign_in

MODEL = "llama3.1-8b"
API = "https://api.cerebras.ai/v1/chat/completions"


async def harvestkit_run(key: str) -> int:
    count = 0
    async for event in Cerebras.create_async_generator(MODEL, "benchmark", api_key=key):
        if isinstance(event, str):
            count += 1
    return count


async def naive_run(session: AsyncSession, key: str) -> int:
    count = 0
    body = {"model": MODEL, "messages": [{"role": "user", "content": "benchmark"}], "stream": True}
    response = await session.post(API, json=body, headers={"Authorization": f"Bearer {key}"}, stream=True)
    async for line in response.aiter_lines():
        if line.startswith(b"data:"):
            chunk = json.loads(line[5:])
            choices = chunk.get("choices") or []
            if choices and choices[0].get("delta", {}).get("content"):
                count += 1
    await response.aclose()
    return count


async def timed(coro) -> tuple[float, int]:
    started = time.perf_counter()
    count = await coro
    return time.perf_counter() - started, count


def import_time(runs: int) -> float:
    code = "import time; t = time.perf_counter(); import harvestkit.client; print(time.perf_counter() - t)"
    samples = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout) for _ in range(runs)]
    return statistics.median(samples)


async def main(chunks: int, runs: int) -> int:
    # The sandbox runs in its own process: the client is measured, not the server.
    with SandboxProcess() as sandbox:
        env = sandbox.env
        os.environ.update(env)  # the client reaches the sandbox as a user's would
        async with sandbox_session(env) as session:
            key = (await sign_in(session))["user"]["demoApiKey"]
        await harvestkit_run(key)  # warm: connection and model list
        sandbox.knobs(reply_tokens=chunks)
        ours, naive = [], []
        async with AsyncSession(impersonate="chrome", proxy=env["HARVESTKIT_PROXY"], verify=env["HARVESTKIT_CA_BUNDLE"]) as session:
            await naive_run(session, key)
            for _ in range(runs):
                ours.append(await timed(harvestkit_run(key)))
                naive.append(await timed(naive_run(session, key)))
        ours_rate = statistics.median(n / t for t, n in ours)
        naive_rate = statistics.median(n / t for t, n in naive)
        ratio = ours_rate / naive_rate
        print(f"stream of {chunks} chunks, median of {runs}:")
        print(f"  harvestkit  {ours_rate:10.0f} chunks/s")
        print(f"  naive loop  {naive_rate:10.0f} chunks/s")
        print(f"  ratio       {ratio:10.2f}x  (target >= 1.5x)")

        sandbox.knobs(reply_tokens=20)
        before = sandbox.handshakes("api.cerebras.ai")
        latencies = []
        for _ in range(10):
            started = time.perf_counter()
            async for event in Cerebras.create_async_generator(MODEL, "latency", api_key=key):
                if isinstance(event, str):
                    latencies.append(time.perf_counter() - started)
                    break
        handshakes = sandbox.handshakes("api.cerebras.ai") - before
        print(f"warm first chunk: p50 {statistics.median(latencies) * 1000:.1f} ms; new TLS handshakes for 10 requests: {handshakes}")
        await aclose()
    seconds = import_time(runs)
    print(f"import harvestkit.client: {seconds:.3f} s (median of {runs}; target <= 0.25 s)")
    return 0 if ratio >= 1.5 and seconds <= 0.25 and handshakes <= 1 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.chunks, args.runs)))
