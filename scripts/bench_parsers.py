"""Benchmark: harvestkit's Cerebras stream parser vs a naive per-line ``json.loads`` loop.

Builds a realistic 20,000-chunk Cerebras SSE stream in memory (a role chunk, content chunks of
1-3 words, an empty delta, a final chunk with finish_reason + usage + time_info, no [DONE]),
cuts it into ~16 KiB network-like pieces and times, median of 5 runs, both consumers reading the
same pieces from an async iterator:

* naive: ``async for line in aiter_lines(): if line.startswith(b"data: "): json.loads(line[6:])``
  with ``aiter_lines`` splitting lines the way curl_cffi's ``Response.aiter_lines`` does;
* harvestkit: ``async for piece in aiter_content(): for ev in parser.feed(piece): ...``.

Usage: ``python scripts/bench_parsers.py [--chunks N] [--runs N] [--min-ratio R]
[--vary-envelope]``; exits 1 if the ratio is below ``--min-ratio`` (default 1.5).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from collections.abc import AsyncIterator

from harvestkit.client.events import FinishReason, Usage
from harvestkit.client.parsers.openai import OpenAIStreamParser

# Mostly plain words; about 1 word in 25 needs a JSON escape (newline, quote, non-ASCII).
# fmt: off
WORDS = ("the", "of", "a", "model", "stream", "token", "fast", "and", "is", "we", "cloud", "to",
         "Cerebras", "inference", "wafer", "chip", "runs", "in", "that", "with", "for", "it",
         "**Note**", "1.", "-", "(see", "below)", "data,", "on", "each", "per", "second.",
         "layer", "weights", "memory", "bandwidth", "large", "language", "models", "serve",
         "tokens", "latency", "throughput", "batch", "prompt", "answer", "code", "`x`",
         "users", "cache", "\n\n", "\"quoted\"", "café", "\n- item", "naïve", "x = 1\n", "so")
# fmt: on


def build_stream(n_chunks: int, seed: int = 1, vary_envelope: bool = False) -> bytes:
    """A Cerebras-like SSE body of ``n_chunks`` chunks (no ``[DONE]``).

    ``vary_envelope`` gives every chunk another ``created`` value, which defeats the parser's
    fast path for repeated envelopes (its worst case: every chunk goes through ``json``).
    """
    rng = random.Random(seed)
    envelope = {
        "id": "chatcmpl-5f7c1e8a-2b4d-4c61-9b0e-3d2a7f6c8e91",
        "choices": [],
        "created": 1761231230,
        "model": "llama3.1-8b",
        "system_fingerprint": "fp_6381a6e5ac",
        "object": "chat.completion.chunk",
    }

    def chunk(delta: dict, **extra: object) -> bytes:
        if vary_envelope:
            envelope["created"] += 1
        body = dict(
            envelope, choices=[{"delta": delta, "index": 0, **extra.pop("choice", {})}], **extra
        )
        return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"

    parts = [chunk({"role": "assistant"})]
    for _ in range(n_chunks - 3):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))
        parts.append(chunk({"content": " " + words}))
    parts.append(chunk({}))
    parts.append(
        chunk(
            {},
            choice={"finish_reason": "stop"},
            usage={
                "prompt_tokens": 22,
                "completion_tokens": n_chunks - 3,
                "total_tokens": n_chunks + 19,
                "prompt_tokens_details": {"cached_tokens": 0},
            },
            time_info={
                "queue_time": 0.0001,
                "prompt_time": 0.002,
                "completion_time": 1.2,
                "total_time": 1.21,
                "created": 1761231230.53,
            },
        )
    )
    return b"".join(parts)


def split_pieces(body: bytes, size: int = 16384, seed: int = 2) -> list[bytes]:
    """Cut ``body`` into pieces of roughly ``size`` bytes (75-125 %), like network reads."""
    rng = random.Random(seed)
    pieces, pos = [], 0
    while pos < len(body):
        step = rng.randint(size * 3 // 4, size * 5 // 4)
        pieces.append(body[pos : pos + step])
        pos += step
    return pieces


async def aiter_content(pieces: list[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def aiter_lines(pieces: list[bytes]) -> AsyncIterator[bytes]:
    """Line splitting as in curl_cffi's ``Response.aiter_lines`` (``bytes.splitlines``)."""
    pending = None
    async for chunk in aiter_content(pieces):
        if pending is not None:
            chunk = pending + chunk
        lines = chunk.splitlines()
        pending = lines.pop() if lines and lines[-1] and lines[-1][-1] == chunk[-1] else None
        for line in lines:
            yield line
    if pending is not None:
        yield pending


async def naive(pieces: list[bytes]) -> int:
    count = 0
    async for line in aiter_lines(pieces):
        if line.startswith(b"data: "):
            json.loads(line[6:])
            count += 1
    return count


async def harvestkit(pieces: list[bytes]) -> int:
    parser = OpenAIStreamParser()
    count = 0
    async for piece in aiter_content(pieces):
        for _event in parser.feed(piece):
            count += 1
    for event in parser.close():
        count += 1
        assert isinstance(event, (Usage, FinishReason))
    return count


def seconds(consumer, pieces: list[bytes]) -> float:
    async def timed() -> float:
        start = time.perf_counter()
        await consumer(pieces)
        return time.perf_counter() - start

    return asyncio.run(timed())


def check(body: bytes, pieces: list[bytes]) -> None:
    """The parser's text equals a plain JSON reading of the same stream."""
    parser, events = OpenAIStreamParser(), []
    for piece in pieces:
        events += parser.feed(piece)
    events += parser.close()
    expected = "".join(
        json.loads(line[6:])["choices"][0]["delta"].get("content", "")
        for line in body.split(b"\n\n")
        if line.startswith(b"data: ")
    )
    assert "".join(e for e in events if isinstance(e, str)) == expected
    assert isinstance(events[-1], FinishReason) and isinstance(events[-2], Usage)


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--chunks", type=int, default=20_000)
    args.add_argument("--runs", type=int, default=5)
    args.add_argument("--min-ratio", type=float, default=1.5)
    args.add_argument("--vary-envelope", action="store_true", help="defeat the envelope fast path")
    opts = args.parse_args(argv)

    body = build_stream(opts.chunks, vary_envelope=opts.vary_envelope)
    pieces = split_pieces(body)
    assert asyncio.run(naive(pieces)) == opts.chunks
    check(body, pieces)
    runs = [(seconds(naive, pieces), seconds(harvestkit, pieces)) for _ in range(opts.runs)]
    t_naive = statistics.median(r[0] for r in runs)
    t_ours = statistics.median(r[1] for r in runs)
    ratio = t_naive / t_ours
    print(f"stream: {opts.chunks} chunks, {len(body)} bytes, {len(pieces)} pieces")
    print(f"naive aiter_lines + json.loads: {opts.chunks / t_naive:12,.0f} chunks/s")
    print(f"harvestkit OpenAIStreamParser:  {opts.chunks / t_ours:12,.0f} chunks/s")
    print(f"ratio: {ratio:.2f}x (target >= {opts.min_ratio}x)")
    return 0 if ratio >= opts.min_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
