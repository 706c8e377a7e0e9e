"""Benchmark `harvestkit serve`: N concurrent streamed chats through the gateway to the sandbox.

    python scripts/bench_gateway.py [--requests 200] [--pace 0.005] [--client sdk|aiohttp] [--model M ...]
    python scripts/bench_gateway.py --relay 20000 [--runs 5] [--json] [--knob NAME=JSON ...]

`--relay N`: one unpaced N-chunk stream at a time, per provider, read through the gateway (plain
aiohttp, the SSE decoded by the library's own OpenAI stream parser) and straight from the client
in this process (`create_async_generator`), in alternation; the median seconds of each and
their ratio (target: the gateway at most 1.25x the direct client); the same stream through the
gateway to a reader that only counts its text chunks (what the gateway's delivery costs, with
the least CPU taken from the two cores by the reader); how many text chunks the gateway sent
for the N (it joins the text that is in hand at once); and the CPU per upstream chunk of the
gateway process (all its threads, /proc schedstat), of the decoding reader and of the direct
client. The gateway's text must equal the direct client's.

The sandbox (`harvestkit sandbox`) and the gateway run as subprocesses, so the gateway's peak
RSS (VmHWM) and CPU time are its own and the clients do not slow the sandbox down. A stand-in
session for both providers goes into a private cache first (tests/client_helpers.py's
browserless harvester); the gateway runs with harvesting disabled. The clients (the openai
SDK, or plain aiohttp, which costs the client side less CPU) fire the requests at once,
alternating Cerebras and Cloudflare. Prints errors (must be 0), first-chunk latency
percentiles, total time, the gateway's peak memory and CPU time; exits 1 on any error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import openai
from harvestkit.cache import AuthCache
from harvestkit.cache.errors import HarvestkitError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from client_helpers import StandInHarvester

MODELS = ("cerebras/gemma-4-31b", "cloudflare/@cf/meta/llama-3.1-8b-instruct-fast")
SERVE = """
import argparse, sys
from harvestkit.cli import serve_cmd
parser = argparse.ArgumentParser()
serve_cmd.add_parser(parser.add_subparsers())
args = parser.parse_args(sys.argv[1:])
sys.exit(args.run(args))
"""
TEXT_MARK = b'"delta":{"content":'  # in each text chunk the gateway sends, and in no other
Chat = Callable[[str, str], AsyncIterator[tuple[str, str | None]]]  # (model, prompt) -> (text, finish)


def kib(pid: int, field: str) -> int:
    """A memory figure of /proc/<pid>/status, in KiB."""
    match = re.search(rf"^{field}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
    return int(match.group(1)) if match else 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_ns(pid: int) -> int:
    """Nanoseconds on a CPU of every thread of a process (/proc/<pid>/task/*/schedstat: finer
    than the 10 ms ticks of /proc/<pid>/stat, which one short stream would be lost in)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):  # a thread that ended meanwhile
            pass
    return total


def start_sandbox(pace: float) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """`harvestkit sandbox` in a subprocess, and the variables it prints."""
    process = subprocess.Popen(
        [sys.executable, "-m", "harvestkit.cli", "sandbox", "--pace", str(pace)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    exports: dict[str, str] = {}
    while len(exports) < 2:
        line = process.stdout.readline()
        if not line:
            stop(process)
            raise SystemExit("the sandbox did not start")
        if match := re.fullmatch(r"export (\w+)=(.*)\n", line):
            exports[match.group(1)] = match.group(2)
    return process, exports


def start_gateway(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """The gateway in a subprocess (`harvestkit serve --port 0 --quiet`), and its URL."""
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, "serve", "--port", "0", "--quiet"], env=env, stderr=subprocess.PIPE, text=True
    )
    line = process.stderr.readline()
    match = re.search(r"API at (\S+)/v1 ", line)
    if match is None:
        stop(process)
        raise SystemExit(f"the gateway did not start: {line}")
    return process, match.group(1)


def stop(process: subprocess.Popen[str]) -> int:
    """SIGTERM, then the exit code."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    finally:
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()


def sdk_chat(client: openai.AsyncOpenAI) -> Chat:
    async def chat(model: str, prompt: str) -> AsyncIterator[tuple[str, str | None]]:
        stream = await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": prompt}], stream=True
        )
        async for chunk in stream:
            for choice in chunk.choices:
                yield choice.delta.content or "", choice.finish_reason

    return chat


def raw_chat(session: aiohttp.ClientSession, url: str) -> Chat:
    async def chat(model: str, prompt: str) -> AsyncIterator[tuple[str, str | None]]:
        body = {"model": model, "messages": [{"role": "user", "content": prompt}], "stream": True}
        async with session.post(url + "/v1/chat/completions", json=body) as response:
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}: {await response.text()}")
            async for line in response.content:
                if not line.startswith(b"data: ") or line.startswith(b"data: [DONE]"):
                    continue
                chunk = json.loads(line[6:])
                if "error" in chunk:
                    raise RuntimeError(chunk["error"]["message"])
                for choice in chunk["choices"]:
                    yield choice["delta"].get("content") or "", choice["finish_reason"]

    return chat


async def one(chat: Chat, model: str, index: int) -> tuple[float, str | None]:
    """(seconds to the first chunk, the error or None) of one streamed chat."""
    prompt = f"Benchmark question {index}"
    started = time.perf_counter()
    first = None
    text, finish = [], None
    try:
        async for delta, reason in chat(model, prompt):
            first = first or time.perf_counter() - started
            text.append(delta)
            finish = reason or finish
    except (openai.APIError, aiohttp.ClientError, RuntimeError) as error:
        return first or 0.0, f"{type(error).__name__}: {error}"
    if not "".join(text).startswith(f"Sandbox reply to: {prompt}.") or finish != "stop":
        return first or 0.0, f"unexpected answer ({finish}): {''.join(text)[:60]!r}"
    return first or 0.0, None


async def load(chat: Chat, requests: int, models: list[str]) -> tuple[list[tuple[float, str | None]], float]:
    """Warm up once per model, then all requests at once; (results, seconds)."""
    for model in models:
        await one(chat, model, -1)
    began = time.perf_counter()
    results = await asyncio.gather(*(one(chat, models[i % len(models)], i) for i in range(requests)))
    return results, time.perf_counter() - began


async def bench(requests: int, pace: float, models: list[str], client: str) -> int:
    sandbox, exports = start_sandbox(pace)
    try:
        with tempfile.TemporaryDirectory(prefix="harvestkit-bench-") as home:
            os.environ.update(exports, HARVESTKIT_HOME=home)
            harvester = StandInHarvester(SimpleNamespace(env=exports))  # it only needs the variables
            for site in ("cerebras", "cloudflare"):
                await harvester(site, cache=AuthCache())
            gateway, url = start_gateway({**os.environ, "HARVESTKIT_NO_HARVEST": "1"})
            try:
                idle_rss = kib(gateway.pid, "VmRSS")
                if client == "sdk":
                    async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=120) as sdk:
                        results, total = await load(sdk_chat(sdk), requests, models)
                else:
                    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
                        results, total = await load(raw_chat(session, url), requests, models)
                peak_rss, gateway_cpu = kib(gateway.pid, "VmHWM"), cpu_seconds(gateway.pid)
            finally:
                code = stop(gateway)
    finally:
        stop(sandbox)
    errors = [error for _, error in results if error]
    firsts = sorted(first for first, error in results if not error)
    print(f"requests        {requests} concurrent, streamed, with the {client} client (sandbox pace {pace:g} s/chunk)")
    print(f"models          {', '.join(models)}")
    print(f"errors          {len(errors)}")
    for error in errors[:5]:
        print(f"  {error}")
    if firsts:
        p99 = firsts[max(0, round(0.99 * len(firsts)) - 1)]
        print(f"first chunk     p50 {statistics.median(firsts) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
    print(f"total time      {total:.2f} s")
    print(f"gateway memory  peak RSS {peak_rss / 1024:.1f} MiB (VmHWM of its process; {idle_rss / 1024:.1f} MiB idle)")
    print(f"gateway CPU     {gateway_cpu:.2f} s, start included")
    print(f"gateway exit    {code} after SIGTERM")
    return 1 if errors or code != 0 else 0


async def direct(model: str, prompt: str) -> tuple[str, int]:
    """The text of one stream read with the library itself, and its text chunks."""
    from harvestkit.client import Cerebras, Cloudflare

    provider, name = model.split("/", 1)
    cls = Cerebras if provider == "cerebras" else Cloudflare
    texts = []
    async for event in cls.create_async_generator(name, prompt):
        if isinstance(event, str) and event:
            texts.append(event)
    return "".join(texts), len(texts)


async def relay(chunks: int, runs: int, models: list[str], knobs: dict[str, Any] | None = None) -> dict[str, dict[str, float]]:
    """Per model: median seconds of an N-chunk stream through the gateway and directly."""
    sandbox, exports = start_sandbox(0)
    found: dict[str, dict[str, float]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="harvestkit-bench-") as home:
            os.environ.update(exports, HARVESTKIT_HOME=home, HARVESTKIT_NO_HARVEST="1")
            harvester = StandInHarvester(SimpleNamespace(env=exports))
            for site in ("cerebras", "cloudflare"):
                await harvester(site, cache=AuthCache())
            control = f"{exports['HARVESTKIT_PROXY']}/__sandbox/knobs"
            gateway, url = start_gateway({**os.environ})
            try:
                async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
                    async with session.post(control, json={**(knobs or {}), "reply_tokens": chunks}) as response:
                        response.raise_for_status()
                    async def through(model: str, prompt: str) -> tuple[str, int]:
                        """The gateway's stream read with the library's own SSE parser: its text
                        and the text chunks the gateway sent."""
                        from harvestkit.client.parsers.openai import OpenAIStreamParser

                        body = {"model": model, "messages": [{"role": "user", "content": prompt}], "stream": True}
                        parser, texts = OpenAIStreamParser("gateway"), []
                        async with session.post(url + "/v1/chat/completions", json=body) as response:
                            if response.status != 200:
                                raise SystemExit(f"{model} through the gateway: HTTP {response.status}: {(await response.text())[:300]}")
                            async for data in response.content.iter_any():
                                texts += [event for event in parser.feed(data) if isinstance(event, str)]
                        texts += [event for event in parser.close() if isinstance(event, str)]
                        return "".join(texts), len(texts)

                    async def counted(model: str, prompt: str) -> tuple[None, int]:
                        """The gateway's stream with its text chunks only counted, not decoded: the
                        time the gateway takes to deliver it, with the least CPU on the reader's side."""
                        body = {"model": model, "messages": [{"role": "user", "content": prompt}], "stream": True}
                        count, tail = 0, b""
                        async with session.post(url + "/v1/chat/completions", json=body) as response:
                            async for data in response.content.iter_any():
                                count += (tail + data[: len(TEXT_MARK) - 1]).count(TEXT_MARK) + data.count(TEXT_MARK)
                                tail = data[1 - len(TEXT_MARK) :]
                        return None, count

                    for model in models:
                        times: dict[str, list[float]] = {"gateway": [], "direct": [], "counted": []}
                        sent: list[int] = []  # the text chunks the gateway sent for the upstream's N
                        cpu: dict[str, list[float]] = {"gateway process": [], "its reader": [], "direct client": []}
                        for run in (through, direct, counted):  # warm: connections, model lists
                            await run(model, "warm-up")
                        for _ in range(runs):
                            for name, run in (("gateway", through), ("direct", direct), ("counted", counted)):
                                started, mine, served = time.perf_counter(), time.process_time(), cpu_ns(gateway.pid)
                                text, count = await run(model, "benchmark")
                                times[name].append(time.perf_counter() - started)
                                here = (time.process_time() - mine) / chunks * 1e6  # a chunk upstream
                                if name == "gateway":
                                    cpu["gateway process"].append((cpu_ns(gateway.pid) - served) / chunks / 1e3)
                                    cpu["its reader"].append(here)
                                    relayed, sent = text, [*sent, count]
                                elif name == "direct":
                                    cpu["direct client"].append(here)
                                    if count != chunks:
                                        raise SystemExit(f"direct {model}: {count} chunks, not {chunks}")
                                    if text != relayed:  # the sandbox's reply to one prompt is always the same
                                        raise SystemExit(f"{model}: the gateway's text differs from the direct client's")
                        gateway_s, direct_s = statistics.median(times["gateway"]), statistics.median(times["direct"])
                        counted_s = statistics.median(times["counted"])
                        found[model] = {"gateway_s": gateway_s, "direct_s": direct_s, "ratio": gateway_s / direct_s,
                                        "counted_s": counted_s, "counted_ratio": counted_s / direct_s,
                                        "chunks_sent": statistics.median(sent),
                                        "cpu_us_per_chunk": {k: statistics.median(v) for k, v in cpu.items()}}  # fmt: skip
                from harvestkit.client import aclose

                await aclose()
            finally:
                stop(gateway)
    finally:
        stop(sandbox)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--relay", type=int, metavar="N", help="time one N-chunk stream through the gateway and directly")
    parser.add_argument("--runs", type=int, default=5, help="rounds of --relay (median)")
    parser.add_argument("--json", action="store_true", help="--relay: print one JSON object")
    parser.add_argument("--knob", action="append", default=[], metavar="NAME=JSON",
                        help="--relay: a sandbox knob for the stream, repeatable (e.g. split_writes=false, generation='\"sse\"')")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--pace", type=float, default=0.005, help="sandbox seconds between streamed chunks")
    parser.add_argument("--client", choices=("sdk", "aiohttp"), default="sdk")
    parser.add_argument("--model", action="append", help=f"model to ask, repeatable (default: {' and '.join(MODELS)})")
    args = parser.parse_args()
    if args.relay:
        try:
            knobs = {name: json.loads(value) for name, _, value in (knob.partition("=") for knob in args.knob)}
        except ValueError:
            parser.error("--knob takes NAME=JSON, e.g. split_writes=false")
        try:
            result = asyncio.run(relay(args.relay, args.runs, args.model or list(MODELS), knobs))
        except HarvestkitError as exc:  # the direct client's answer to a model or knob it cannot serve
            print(f"bench_gateway: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps({"chunks": args.relay, "runs": args.runs, "models": result}))
            return 0
        print(f"one {args.relay}-chunk stream at a time, median of {args.runs}")
        for model, entry in result.items():
            print(f"  {model:<50} gateway {entry['gateway_s']:.3f} s, direct {entry['direct_s']:.3f} s: {entry['ratio']:.2f}x (target <= 1.25x)")
            print("  " + " " * 50 + f" the gateway sent the {args.relay} chunks as {entry['chunks_sent']:,.0f}")
            print("  " + " " * 50 + f" a reader that only counts the chunks: {entry['counted_s']:.3f} s ({entry['counted_ratio']:.2f}x)")
            print("  " + " " * 50 + " CPU a chunk: " + ", ".join(f"{k} {v:.2f} µs" for k, v in entry["cpu_us_per_chunk"].items()))
        return 0 if all(entry["ratio"] <= 1.25 for entry in result.values()) else 1
    return asyncio.run(bench(args.requests, args.pace, args.model or list(MODELS), args.client))


if __name__ == "__main__":
    sys.exit(main())
