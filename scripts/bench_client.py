"""Benchmark: the Cerebras client end to end against the sandbox, and its import time.

harvestkit against a naive curl_cffi ``aiter_lines()`` + ``json.loads`` loop (what gpt4free's
providers do), on the same 100,000-chunk Cerebras streams through the sandbox's proxy and TLS
(the sandbox in a process of its own): one whose chunks share an envelope and one whose envelope
varies on every chunk, median of N rounds taken in alternation. Then the first-chunk latency and
the TLS handshakes of 10 sequential requests on a fresh client (target: 1), and ``import
harvestkit.client`` in fresh interpreters (target <= 0.25 s).

The measurements are those of ``bench_peers.py`` with two of its clients; that script adds the
openai SDK and gpt4free.

Usage: ``python scripts/bench_client.py [--chunks N] [--runs N]``; exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from bench_peers import Harvestkit, Naive, bench

TARGET = 3.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    result = asyncio.run(bench(["harvestkit", "naive"], args.chunks, args.runs))
    if result["errors"]:
        print(result["errors"])
        return 1
    ours, naive = Harvestkit.name, Naive.name
    met = True
    for envelope, stream in result["streams"].items():
        ratio = stream["ratio"][ours]
        met = met and ratio >= TARGET
        print(f"stream of {args.chunks} chunks, {envelope} envelope, median of {args.runs}:")
        print(f"  harvestkit  {stream['throughput'][ours]:10.0f} chunks/s  {stream['cpu_us_per_chunk'][ours]:6.2f} µs CPU/chunk")
        print(f"  naive loop  {stream['throughput'][naive]:10.0f} chunks/s  {stream['cpu_us_per_chunk'][naive]:6.2f} µs CPU/chunk")
        print(f"  ratio       {ratio:10.2f}x  (target >= {TARGET:g}x)")
    handshakes, seconds = result["handshakes"][ours], result["import_s"][Harvestkit.module]
    print(f"warm first chunk: p50 {result['first_chunk_ms'][ours]:.1f} ms; TLS handshakes for 10 requests: {handshakes}")
    print(f"import harvestkit.client: {seconds:.3f} s (median of {args.runs}; target <= 0.25 s)")
    return 0 if met and seconds <= 0.25 and handshakes <= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
