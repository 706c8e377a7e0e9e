"""Benchmark: the Cloudflare agents WebSocket, harvestkit against a naive curl_cffi loop.

The sandbox runs in a process of its own (the agents generation, an unpaced reply of N
tokens); both clients go through its proxy and CA with a Chrome fingerprint and a passed
challenge, on the same stream, in alternation, each warm:

* harvestkit: ``Cloudflare.create_async_generator(model, prompt)`` (a stand-in session in a
  private cache, tests/client_helpers.py's browserless harvester; harvesting off);
* naive: one curl_cffi ``AsyncSession``, ``ws_connect``, the state and request frames, then
  ``await ws.recv()`` per frame, ``json.loads`` of the frame and of its ``body``, counting the
  ``text-delta`` chunks, until ``done``.

Measured: text chunks/s (median of N rounds), the ratio to the naive loop and the client's CPU
time per chunk (this process's ``process_time``, which does not depend on how fast the
sandbox, sharing the machine, writes).

Usage: ``python scripts/bench_agents.py [--chunks N] [--runs N] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from harvestkit.cache import AuthCache
from harvestkit.sandbox.process import SandboxProcess
from harvestkit.sandbox.shortcuts import CHROME_UA, sandbox_session, solve_challenge

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from client_helpers import StandInHarvester  # noqa: E402

MODEL = "@cf/meta/llama-3.1-8b-instruct-fast"
ORIGIN = "https://playground.ai.cloudflare.com"
Run = Callable[[str], Awaitable[int]]


async def harvestkit(prompt: str) -> int:
    from harvestkit.client import Cloudflare

    count = 0
    async for event in Cloudflare.create_async_generator(MODEL, prompt):
        if isinstance(event, str):
            count += 1
    return count


def naive(session: Any) -> Run:
    async def run(prompt: str) -> int:
        url = f"wss://playground.ai.cloudflare.com/agents/playground/Cloudflare-AI-Playground-{uuid.uuid4().hex[:21]}?_pk={uuid.uuid4()}"
        ws = await session.ws_connect(url, headers={"Origin": ORIGIN, "User-Agent": CHROME_UA})
        request_id, count = "req_1", 0
        body = {"messages": [{"id": "m1", "role": "user", "parts": [{"type": "text", "text": prompt}]}], "trigger": "submit-message"}
        await ws.send_str(json.dumps({"type": "cf_agent_state", "state": {"model": MODEL, "temperature": 1, "stream": True, "system": ""}}))
        await ws.send_str(json.dumps({"type": "cf_agent_use_chat_request", "id": request_id, "init": {"method": "POST", "body": json.dumps(body)}}))
        try:
            while True:
                data, _ = await ws.recv()
                frame = json.loads(data)
                if frame.get("type") != "cf_agent_use_chat_response" or frame.get("id") != request_id:
                    continue
                if frame.get("body"):
                    chunk = json.loads(frame["body"])
                    if chunk.get("type") == "text-delta" and chunk.get("delta"):
                        count += 1
                if frame.get("done"):
                    return count
        finally:
            await ws.close()

    return run


async def rounds(clients: dict[str, Run], runs: int) -> dict[str, dict[str, list[float]]]:
    for run in clients.values():
        await run("warm-up")
    found: dict[str, dict[str, list[float]]] = {name: {"rates": [], "cpu": []} for name in clients}
    for _ in range(runs):
        for name, run in clients.items():
            started, cpu = time.perf_counter(), time.process_time()
            count = await run("benchmark")
            found[name]["rates"].append(count / (time.perf_counter() - started))
            found[name]["cpu"].append((time.process_time() - cpu) / count * 1e6)
    return found


async def bench(chunks: int, runs: int) -> dict[str, Any]:
    with SandboxProcess() as sandbox, tempfile.TemporaryDirectory(prefix="harvestkit-bench-") as home:
        os.environ.update(sandbox.env, HARVESTKIT_HOME=home, HARVESTKIT_NO_HARVEST="1")
        await StandInHarvester(SimpleNamespace(env=sandbox.env))("cloudflare", cache=AuthCache())
        sandbox.knobs(generation="agents", reply_tokens=chunks)
        async with sandbox_session(sandbox.env) as session:
            assert await solve_challenge(session, CHROME_UA)
            found = await rounds({"harvestkit": harvestkit, "naive loop": naive(session)}, runs)
        from harvestkit.client import aclose

        await aclose()
    result: dict[str, Any] = {"chunks": chunks, "runs": runs, "rounds": found}
    result["throughput"] = {name: statistics.median(entry["rates"]) for name, entry in found.items()}
    result["cpu_us_per_chunk"] = {name: statistics.median(entry["cpu"]) for name, entry in found.items()}
    naive_rate = result["throughput"]["naive loop"]
    result["ratio"] = {name: rate / naive_rate for name, rate in result["throughput"].items()}
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = parser.parse_args()
    result = asyncio.run(bench(args.chunks, args.runs))
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"agents WebSocket, {args.chunks} chunks, median of {args.runs} rounds")
    for name, rate in result["throughput"].items():
        print(f"  {name:<12}{rate:>10.0f} chunks/s{result['ratio'][name]:>7.2f}x{result['cpu_us_per_chunk'][name]:>8.2f} µs CPU/chunk")
    return 0


if __name__ == "__main__":
    sys.exit(main())
