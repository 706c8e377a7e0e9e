"""Compressed responses, as Cloudflare sends them (spec 4.2): gzip, br or zstd for HTML, JSON and
text, 403 pages included, but never for `text/event-stream` or `text/x-unknown` streams.

aiohttp's own compression knows gzip and deflate only, so whole bodies are compressed here, with
the coding picked at random among those the client accepts (br needs the `brotli` package, zstd
the `zstandard` one), or the one coding the `compress` knob names.
"""
from __future__ import annotations

import gzip
import random
from collections.abc import Awaitable, Callable

import brotli
import zstandard
from aiohttp import web

from .state import SandboxState

COMPRESSED_TYPES = ("text/html", "application/json", "text/plain", "text/javascript")
CODERS: dict[str, Callable[[bytes], bytes]] = {
    "br": brotli.compress,
    "gzip": lambda data: gzip.compress(data, mtime=0),
    "zstd": zstandard.ZstdCompressor().compress,  # with the content size in the frame header
}


def accepted(header: str) -> list[str]:
    """The codings of an Accept-Encoding header that the sandbox can send (q=0 means refused)."""
    offered = []
    for part in header.lower().split(","):
        name, _, params = part.strip().partition(";")
        quality = params.strip().replace(" ", "")
        if quality.startswith("q=") and quality[2:].strip("0.") == "" and quality[2:]:
            continue
        if name.strip() in CODERS:
            offered.append(name.strip())
    return offered


def compressor(
    state: SandboxState, rng: random.Random | None = None
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """An `on_response_prepare` hook compressing what the knob and the client allow."""
    pick = rng or random.Random()

    async def compress(request: web.Request, response: web.StreamResponse) -> None:
        wanted = state.knobs.compress
        if not wanted or not isinstance(response, web.Response):
            return
        body = response.body
        if not isinstance(body, (bytes, bytearray)) or not body or "Content-Encoding" in response.headers:
            return
        if response.content_type not in COMPRESSED_TYPES:
            return
        codings = accepted(request.headers.get("Accept-Encoding", ""))
        if wanted is not True:  # one coding named: only it, and only if the client takes it
            codings = [c for c in codings if c == wanted]
        if not codings:
            return
        coding = pick.choice(codings)
        response.body = packed = CODERS[coding](bytes(body))
        response.headers["Content-Length"] = str(len(packed))  # aiohttp set it before this hook ran
        response.headers["Content-Encoding"] = coding
        response.headers.add("Vary", "Accept-Encoding")

    return compress
