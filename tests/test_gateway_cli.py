"""`harvestkit serve` as a user runs it, in a subprocess."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time

import aiohttp
import openai

# The command's entry point with only `serve` registered, as `harvestkit.cli.main` runs it.
COMMAND = """
import argparse, logging, sys
from harvestkit.cli import serve_cmd
parser = argparse.ArgumentParser(prog="harvestkit")
serve_cmd.add_parser(parser.add_subparsers(dest="command"))
args = parser.parse_args(sys.argv[1:])
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
sys.exit(args.run(args))
"""
HARVESTKIT = [sys.executable, "-c", COMMAND]
KEY = "gw-cli-key-9876543210"


def test_non_loopback_bind_without_a_key_is_refused(monkeypatch) -> None:
    monkeypatch.delenv("HARVESTKIT_GATEWAY_KEY", raising=False)
    done = subprocess.run([*HARVESTKIT, "serve", "--host", "0.0.0.0", "--port", "0"], check=False, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "refusing to listen on 0.0.0.0 without an API key" in done.stderr and "HARVESTKIT_GATEWAY_KEY" in done.stderr


async def test_serves_with_the_key_from_the_environment_and_stops_gracefully_on_sigterm(client_env) -> None:
    await client_env.harvester("cerebras", cache=client_env.cache)  # the gateway's process finds it cached
    env = {**os.environ, "HARVESTKIT_GATEWAY_KEY": KEY, "HARVESTKIT_NO_HARVEST": "1"}
    process = await asyncio.create_subprocess_exec(
        *HARVESTKIT, "serve", "--host", "0.0.0.0", "--port", "0", env=env, stderr=subprocess.PIPE
    )
    try:
        line = (await process.stderr.readline()).decode()
        match = re.search(r"API at http://0\.0\.0\.0:(\d+)/v1 \(clients must send the API key\)", line)
        assert match, line
        base = f"http://127.0.0.1:{match.group(1)}"
        async with aiohttp.ClientSession(base) as http, http.get("/health") as health, http.get("/v1/models") as refused:
            assert (health.status, refused.status) == (200, 401)
        client_env.sandbox.set_knobs(pace=0.02, reply_tokens=40)
        async with openai.AsyncOpenAI(base_url=base + "/v1", api_key=KEY, max_retries=0) as client:
            stream = await client.chat.completions.create(
                model="cerebras/gemma-4-31b", messages=[{"role": "user", "content": "Finish me"}], stream=True
            )
            chunks = [await anext(stream)]
            process.send_signal(signal.SIGTERM)  # the answer in flight is still finished
            chunks += [chunk async for chunk in stream]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text.startswith("Sandbox reply to: Finish me.") and chunks[-1].choices[0].finish_reason == "stop"
        assert await asyncio.wait_for(process.wait(), 15) == 0
        log = (await process.stderr.read()).decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert '"GET /v1/models" 401' in log and '"POST /v1/chat/completions" 200' in log and "stopping" in log
    assert KEY not in log and "Bearer" not in log and client_env.cache.get_sync("cerebras").api_key not in log


def most_at_once(spans: list[tuple[float, float]]) -> int:
    """The most of these (start, end) intervals that were open at one time."""
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    most = current = 0
    for _, step in edges:
        current += step
        most = max(most, current)
    return most


async def test_cloudflare_chats_to_a_slow_front_open_their_sockets_side_by_side(client_env) -> None:
    """40 chats at once while each WebSocket upgrade takes a second to be answered: the
    sandbox sees the upgrades wait side by side, not a few at a time (curl_cffi performs each
    handshake in the loop's default executor, which has only 6 threads on two cores)."""
    await client_env.harvester("cloudflare", cache=client_env.cache)
    env = {**os.environ, "HARVESTKIT_NO_HARVEST": "1"}
    process = await asyncio.create_subprocess_exec(*HARVESTKIT, "serve", "--port", "0", env=env, stderr=subprocess.PIPE)
    try:
        line = (await process.stderr.readline()).decode()
        match = re.search(r"API at (http://127\.0\.0\.1:\d+)/v1 ", line)
        assert match, line
        delay, since = 1.0, time.time()
        client_env.sandbox.set_knobs(upgrade_delay=delay, reply_tokens=20)
        body = {"model": "cloudflare/@cf/meta/llama-3.1-8b-instruct-fast"}

        async def chat(http: aiohttp.ClientSession, index: int) -> str:
            question = {**body, "messages": [{"role": "user", "content": f"socket {index}"}]}
            async with http.post("/v1/chat/completions", json=question) as answer:
                assert answer.status == 200, await answer.text()
                return (await answer.json())["choices"][0]["message"]["content"]

        async with aiohttp.ClientSession(match.group(1), connector=aiohttp.TCPConnector(limit=0)) as http:
            answers = await asyncio.gather(*(chat(http, index) for index in range(40)))
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert all(text.startswith(f"Sandbox reply to: socket {index}.") for index, text in enumerate(answers))
    requests = client_env.sandbox.requests("playground.ai.cloudflare.com")
    upgrades = [r.time for r in requests if r.time >= since and r.method == "GET" and r.status == 101]
    assert len(upgrades) >= 40  # each chat's socket (and, on a cold gateway, model-list sockets)
    # more than the largest default executor (32 threads) wait at once (the 40 upgrades reach
    # the sandbox within about 0.1 s)
    assert most_at_once([(start, start + delay) for start in upgrades]) >= 33
