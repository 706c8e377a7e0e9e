"""Benchmark: harvestkit and its peers on the same Cerebras streams from the sandbox, in one run.

The sandbox runs in a process of its own (the clients are measured, not the server); every client
goes through its proxy and CA:

* harvestkit: ``Cerebras.create_async_generator(model, prompt, api_key=key)``;
* naive: one curl_cffi ``AsyncSession``, ``aiter_lines()`` and ``json.loads`` per ``data:`` line;
* openai: ``AsyncOpenAI(base_url=..., http_client=httpx2.AsyncClient(proxy=..., verify=ctx))``
  (httpx2 is the HTTP library openai depends on);
* g4f: gpt4free's ``Cerebras.create_async_generator(model, messages, api_key=key, proxy=...)``;
  the sandbox CA reaches the curl_cffi session it makes per call through ``REQUESTS_CA_BUNDLE``
  and ``CURL_CA_BUNDLE``, which curl_cffi reads (it has no argument for a CA).

Measured, on two 100,000-chunk streams: one whose chunks share one envelope byte for byte
(sandbox knob ``envelope="identical"``) and one whose envelope changes on every chunk, as real
servers' do (``envelope="varying"``: random ``obfuscation`` padding, ``tokens`` ids, reordered
keys, optional fields absent, and ``usage_chunk``: the usage in a last chunk with
``choices: []``): chunks/s (median of N rounds, the clients in alternation, each warm), the
ratio to the naive loop and the client's CPU time per chunk (this process's ``process_time``:
unlike chunks/s, it does not depend on how fast the sandbox, sharing the machine, writes).
The openai SDK and gpt4free are measured on the varying stream only (they are slow: the suite
stays short). Then, per client from a fresh instance, 10 sequential 20-chunk requests read to
their end: the TLS handshakes the sandbox saw and the median first-chunk latency of requests
2-10; and the import time of each library in fresh interpreters.

Every proxy variable points at the sandbox, which refuses any other host: nothing leaves loopback.

Usage: ``python scripts/bench_peers.py [--chunks N] [--runs N] [--peers a,b] [--envelopes a,b] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, ClassVar

from curl_cffi.requests import AsyncSession
from harvestkit.sandbox.process import SandboxProcess
from harvestkit.sandbox.shortcuts import sandbox_session, sign_in

MODEL = "gemma-4-31b"
HOST = "api.cerebras.ai"
API = f"https://{HOST}/v1"
Result = tuple[int, float]  # (text chunks, perf_counter() at the first one)
ENVELOPES = {  # name -> sandbox knobs
    "identical": {"envelope": "identical", "usage_chunk": False},
    "varying": {"envelope": "varying", "usage_chunk": True},
}


class Peer:
    """One client under test: opened once, then ``run`` streams a reply and counts its chunks."""

    name: ClassVar[str]
    module: ClassVar[str | None] = None  # what the import-time measurement imports

    def __init__(self, key: str, env: dict[str, str]) -> None:
        self.key = key
        self.proxy = env["HARVESTKIT_PROXY"]
        self.ca_bundle = env["HARVESTKIT_CA_BUNDLE"]

    async def open(self) -> None:
        """Create the client (a fresh one: no connection yet)."""

    async def run(self, prompt: str) -> Result:
        raise NotImplementedError

    async def close(self) -> None:
        """Release the client and its connections."""


class Harvestkit(Peer):
    name, module = "harvestkit", "harvestkit.client"

    async def open(self) -> None:
        await self.close()

    async def run(self, prompt: str) -> Result:
        from harvestkit.client import Cerebras

        count, first = 0, 0.0
        async for event in Cerebras.create_async_generator(MODEL, prompt, api_key=self.key):
            if isinstance(event, str):
                if not count:
                    first = time.perf_counter()
                count += 1
        return count, first

    async def close(self) -> None:
        from harvestkit.client import aclose

        await aclose()


class Naive(Peer):
    name = "naive loop"

    async def open(self) -> None:
        self.session = AsyncSession(impersonate="chrome", proxy=self.proxy, verify=self.ca_bundle)

    async def run(self, prompt: str) -> Result:
        count, first = 0, 0.0
        body = {"model": MODEL, "messages": [{"role": "user", "content": prompt}], "stream": True}
        headers = {"Authorization": f"Bearer {self.key}"}
        response = await self.session.post(f"{API}/chat/completions", json=body, headers=headers, stream=True)
        async for line in response.aiter_lines():
            if line.startswith(b"data:"):
                chunk = json.loads(line[5:])
                choices = chunk.get("choices") or []
                if choices and choices[0].get("delta", {}).get("content"):
                    if not count:
                        first = time.perf_counter()
                    count += 1
        await response.aclose()
        return count, first

    async def close(self) -> None:
        await self.session.close()


class OpenAISDK(Peer):
    name, module = "openai SDK", "openai"

    async def open(self) -> None:
        import httpx2
        import openai

        http = httpx2.AsyncClient(proxy=self.proxy, verify=ssl.create_default_context(cafile=self.ca_bundle))
        self.client = openai.AsyncOpenAI(base_url=API, api_key=self.key, http_client=http, max_retries=0)

    async def run(self, prompt: str) -> Result:
        count, first = 0, 0.0
        messages: Any = [{"role": "user", "content": prompt}]
        stream = await self.client.chat.completions.create(model=MODEL, messages=messages, stream=True)
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                if not count:
                    first = time.perf_counter()
                count += 1
        return count, first

    async def close(self) -> None:
        await self.client.close()


class G4F(Peer):
    name, module = "g4f", "g4f"

    async def open(self) -> None:
        from g4f import debug

        debug.version_check = False  # it would ask PyPI
        for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # read by every new curl_cffi session
            os.environ[name] = self.ca_bundle

    async def run(self, prompt: str) -> Result:
        from g4f.Provider import Cerebras

        count, first = 0, 0.0
        messages = [{"role": "user", "content": prompt}]
        async for chunk in Cerebras.create_async_generator(MODEL, messages, api_key=self.key, proxy=self.proxy):
            if isinstance(chunk, str):
                if not count:
                    first = time.perf_counter()
                count += 1
        return count, first


PEERS: dict[str, type[Peer]] = {"harvestkit": Harvestkit, "naive": Naive, "openai": OpenAISDK, "g4f": G4F}
CORE = (Harvestkit.name, Naive.name)  # the clients measured on every envelope


async def throughput(peers: list[Peer], runs: int) -> dict[str, dict[str, Any]]:
    """Per client over ``runs`` rounds: chunks/s of each, CPU µs per chunk, chunks received."""
    for peer in peers:
        await peer.run("warm-up")  # connection, model list, lazy imports
    found: dict[str, dict[str, Any]] = {peer.name: {"rates": [], "cpu": []} for peer in peers}
    for _ in range(runs):
        for peer in peers:
            started, cpu = time.perf_counter(), time.process_time()
            count, _ = await peer.run("benchmark")
            entry = found[peer.name]
            entry["rates"].append(count / (time.perf_counter() - started))
            entry["cpu"].append((time.process_time() - cpu) / count * 1e6)
            entry["received"] = count
    return found


async def sequential(peer: Peer, sandbox: SandboxProcess, requests: int = 10) -> tuple[float, int]:
    """(median first-chunk ms of requests 2..N, TLS handshakes) for N requests on a fresh client."""
    await peer.open()
    before = sandbox.handshakes(HOST)
    latencies = []
    try:
        for _ in range(requests):
            started = time.perf_counter()
            _, first = await peer.run("latency")
            latencies.append(first - started)
    finally:
        await peer.close()
    return statistics.median(latencies[1:]) * 1000, sandbox.handshakes(HOST) - before


def import_time(module: str, runs: int) -> float | None:
    """Median seconds of ``import module`` in fresh interpreters (None: it cannot be imported),
    its bytecode cached first, as a pip install leaves it (PYTHONDONTWRITEBYTECODE would
    otherwise make every run compile a source checkout's modules again)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, check=False, env=env)
    samples = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
        if done.returncode:
            return None
        samples.append(float(done.stdout))
    return statistics.median(samples)


def guard_network(proxy: str) -> None:
    """Send whatever honours the proxy variables to the sandbox, which refuses every other host."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        os.environ[name] = os.environ[name.lower()] = proxy
    os.environ.pop("NO_PROXY", None)
    os.environ.pop("no_proxy", None)


def summary(found: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Medians and ratios of one stream's rounds."""
    result: dict[str, Any] = {"rounds": found}
    result["throughput"] = {name: statistics.median(entry["rates"]) for name, entry in found.items()}
    result["cpu_us_per_chunk"] = {name: statistics.median(entry["cpu"]) for name, entry in found.items()}
    result["received"] = {name: entry["received"] for name, entry in found.items()}
    naive = result["throughput"].get(Naive.name)
    result["ratio"] = {name: rate / naive for name, rate in result["throughput"].items()} if naive else {}
    return result


async def bench(names: list[str], chunks: int, runs: int, envelopes: list[str] = list(ENVELOPES)) -> dict[str, Any]:
    result: dict[str, Any] = {"chunks": chunks, "runs": runs, "errors": {}}
    with SandboxProcess() as sandbox, tempfile.TemporaryDirectory(prefix="harvestkit-bench-") as home:
        env = sandbox.env
        os.environ.update(env, HARVESTKIT_HOME=home)
        guard_network(env["HARVESTKIT_PROXY"])
        async with sandbox_session(env) as session:
            key = (await sign_in(session))["user"]["demoApiKey"]
        peers = []
        for name in names:
            peer = PEERS[name](key, env)
            try:
                await peer.open()
                await peer.run("probe")
            except Exception as exc:  # noqa: BLE001 - a peer that cannot run is reported, not fatal
                result["errors"][peer.name] = f"{type(exc).__name__}: {exc}"[:300]
                with contextlib.suppress(Exception):
                    await peer.close()
                continue
            peers.append(peer)
        result["streams"] = {}
        for envelope in envelopes:
            sandbox.knobs(reply_tokens=chunks, **ENVELOPES[envelope])
            # the slow peers only on the envelope real servers send: the suite stays short
            taking = peers if envelope == "varying" else [p for p in peers if p.name in CORE]
            result["streams"][envelope] = summary(await throughput(taking, runs))
        for peer in peers:
            await peer.close()
        sandbox.knobs(reply_tokens=20, **ENVELOPES["varying"])
        result["first_chunk_ms"], result["handshakes"] = {}, {}
        for peer in peers:
            result["first_chunk_ms"][peer.name], result["handshakes"][peer.name] = await sequential(peer, sandbox)
    modules = [module for name in names if (module := PEERS[name].module)]
    result["import_s"] = {module: import_time(module, runs) for module in modules}
    return result


def report(result: dict[str, Any]) -> None:
    for envelope, stream in result["streams"].items():
        print(f"stream of {result['chunks']} chunks, {envelope} envelope, median of {result['runs']} rounds")
        print(f"  {'client':<12}{'chunks/s':>10}{'vs naive':>10}{'CPU/chunk':>11}")
        for name, rate in stream["throughput"].items():
            ratio, cpu = stream["ratio"].get(name, 0), stream["cpu_us_per_chunk"][name]
            print(f"  {name:<12}{rate:>10.0f}{ratio:>9.2f}x{cpu:>8.2f} µs")
    print("10 sequential 20-chunk requests per client, from a fresh client")
    print(f"  {'client':<12}{'first chunk':>13}{'handshakes':>12}")
    for name, ms in result["first_chunk_ms"].items():
        print(f"  {name:<12}{ms:>10.1f} ms{result['handshakes'][name]:>12}")
    for name, error in result["errors"].items():
        print(f"  {name:<12}not measured: {error}")
    for module, seconds in result["import_s"].items():
        print(f"  import {module}: {'cannot be imported' if seconds is None else f'{seconds:.3f} s'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated, of {', '.join(PEERS)}")
    parser.add_argument("--envelopes", default=",".join(ENVELOPES), help=f"comma-separated, of {', '.join(ENVELOPES)}")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = parser.parse_args()
    names, envelopes = args.peers.split(","), args.envelopes.split(",")
    if unknown := set(names) - set(PEERS):
        parser.error(f"unknown peers: {', '.join(sorted(unknown))}")
    if unknown := set(envelopes) - set(ENVELOPES):
        parser.error(f"unknown envelopes: {', '.join(sorted(unknown))}")
    result = asyncio.run(bench(names, args.chunks, args.runs, envelopes))
    if args.json:
        print(json.dumps(result))
    else:
        report(result)
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
