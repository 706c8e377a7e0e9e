"""Benchmark: the Cerebras stream parser and the JSON decoders it could use, in memory.

The streams are the sandbox's own (``Completion.sse()``), 100,000 chunks, with the identical
envelope and with the per-chunk varying one (random ``obfuscation`` padding, ``tokens`` ids,
reordered keys, optional fields, a usage-only last chunk), cut into ~16 KiB network-like
pieces. No network: what is measured is the CPU each consumer spends per chunk (median of N
runs, ``time.process_time``):

* naive: curl_cffi-style ``aiter_lines`` splitting, ``json.loads`` of every ``data:`` line and
  ``chunk["choices"][0]["delta"].get("content")``, what gpt4free's providers do;
* decoders alone, on the pre-cut payloads, each reading the content the same way: ``json.loads``
  and ``orjson.loads`` (a dict of every field), msgspec into the typed record of
  ``harvestkit.client.parsers.records`` (only the fields the client reads);
* harvestkit: ``OpenAIStreamParser.feed(piece)`` for every piece, then ``close()``.

The decoder figures are why the parser uses msgspec (see BENCHMARKS.md).

Usage: ``python scripts/bench_parsers.py [--chunks N] [--runs N] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from harvestkit.client.events import FinishReason, Usage
from harvestkit.client.parsers.openai import OpenAIStreamParser
from harvestkit.client.parsers.records import OpenAIChunk, decoder
from harvestkit.sandbox.cerebras_stream import Completion
from harvestkit.sandbox.textgen import make_reply

ENVELOPES = {"identical": {"envelope": "identical"}, "varying": {"envelope": "varying", "usage_chunk": True}}


def build_stream(chunks: int, envelope: str) -> bytes:
    """The sandbox's Cerebras stream of ``chunks`` content chunks with that envelope."""
    reply = make_reply([{"role": "user", "content": "benchmark"}], reply_tokens=chunks)
    return b"".join(Completion("gemma-4-31b", reply, None, **ENVELOPES[envelope]).sse())


def split_pieces(body: bytes, size: int = 16384, seed: int = 2) -> list[bytes]:
    """Cut ``body`` into pieces of roughly ``size`` bytes (75-125 %), like network reads."""
    rng = random.Random(seed)
    pieces, pos = [], 0
    while pos < len(body):
        step = rng.randint(size * 3 // 4, size * 5 // 4)
        pieces.append(body[pos : pos + step])
        pos += step
    return pieces


def lines(pieces: list[bytes]) -> Iterator[bytes]:
    """Line splitting as in curl_cffi's ``Response.aiter_lines`` (``bytes.splitlines``)."""
    pending = None
    for chunk in pieces:
        if pending is not None:
            chunk = pending + chunk
        found = chunk.splitlines()
        pending = found.pop() if found and found[-1] and found[-1][-1] == chunk[-1] else None
        yield from found
    if pending is not None:
        yield pending


def naive(pieces: list[bytes], payloads: list[bytes]) -> int:
    count = 0
    for line in lines(pieces):
        if line.startswith(b"data:"):
            chunk = json.loads(line[5:])
            choices = chunk.get("choices") or []
            if choices and choices[0].get("delta", {}).get("content"):
                count += 1
    return count


def walk_dicts(loads: Callable[[bytes], Any]) -> Callable[[list[bytes], list[bytes]], int]:
    def run(pieces: list[bytes], payloads: list[bytes]) -> int:
        count = 0
        for payload in payloads:
            choices = loads(payload).get("choices") or []
            if choices and choices[0].get("delta", {}).get("content"):
                count += 1
        return count

    return run


def msgspec_records(pieces: list[bytes], payloads: list[bytes]) -> int:
    decode, count = decoder(OpenAIChunk).decode, 0
    for payload in payloads:
        choices = decode(payload).choices
        if choices and choices[0].delta is not None and choices[0].delta.content:
            count += 1
    return count


def harvestkit(pieces: list[bytes], payloads: list[bytes]) -> int:
    parser, count, last = OpenAIStreamParser(), 0, []
    for piece in pieces:
        for event in parser.feed(piece):
            if isinstance(event, str):
                count += 1
            else:
                last.append(event)
    last += parser.close()
    assert isinstance(last[-1], FinishReason) and isinstance(last[-2], Usage)
    return count


def consumers() -> dict[str, Callable[[list[bytes], list[bytes]], int]]:
    found = {"naive loop": naive, "json.loads": walk_dicts(json.loads)}
    try:
        import orjson

        found["orjson.loads"] = walk_dicts(orjson.loads)
    except ImportError:  # the bench peers' install has it; say so instead of failing
        print("orjson is not installed: its row is left out", file=sys.stderr)
    found["msgspec record"] = msgspec_records
    found["harvestkit parser"] = harvestkit
    return found


def measure(chunks: int, runs: int) -> dict[str, dict[str, float]]:
    """Per envelope, per consumer: median CPU µs per chunk."""
    result: dict[str, dict[str, float]] = {}
    for envelope in ENVELOPES:
        body = build_stream(chunks, envelope)
        pieces = split_pieces(body)
        payloads = [event[6:] for event in body.split(b"\n\n") if event.startswith(b"data: ")]
        result[envelope] = {}
        for name, consume in consumers().items():
            samples = []
            for _ in range(runs):
                started = time.process_time()
                assert consume(pieces, payloads) == chunks, name
                samples.append((time.process_time() - started) / chunks * 1e6)
            result[envelope][name] = statistics.median(samples)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = parser.parse_args()
    result = measure(args.chunks, args.runs)
    if args.json:
        print(json.dumps({"chunks": args.chunks, "runs": args.runs, "cpu_us_per_chunk": result}))
        return 0
    for envelope, rows in result.items():
        print(f"{args.chunks} chunks, {envelope} envelope: CPU per chunk, median of {args.runs}")
        for name, micros in rows.items():
            print(f"  {name:<18}{micros:7.2f} µs  ({rows['naive loop'] / micros:.2f}x the naive loop)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
