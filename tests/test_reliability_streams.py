"""A broken stream, of every kind, gives StreamBroken with the text so far: never a hang, never a
raw exception, never a quietly partial answer; a 10 MB line is refused with bounded memory.

Two layers. Every byte offset (every frame for the agents socket) of a recorded stream, with
the three ways a stream can end early, through the whole provider call with only curl_cffi's
objects faked (see reliability_streams.py). Then real sockets: a local server cutting the
recorded response at a spread of offsets (then closing, resetting or falling silent), and the
sandbox, through its proxy and TLS, cutting each generation after every chunk.
"""

from __future__ import annotations

import asyncio
import time
import tracemalloc

import pytest
from client_helpers import ClientEnv
from harvestkit.client import (
    Cerebras,
    Cloudflare,
    ProtocolError,
    StreamTimeout,
    Timeout,
)
from harvestkit.client.parsers._common import MAX_LINE
from harvestkit.client.transport import Request, Response
from reliability_streams import (
    ENDINGS,
    KINDS,
    FakeRaw,
    Recording,
    direct,
    explicit,
    judge,
    offline,
    record_all,
    replay,
    run,
    set_knobs,
)
from reliability_wire import CuttingServer, Trickle, body_offset, offsets, wire

__all__ = ["offline"]  # fixture
pytestmark = pytest.mark.timeout(120)
HTTP_KINDS = [kind for kind in KINDS if kind != "agents"]


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Recording]:
    return record_all(tmp_path_factory.mktemp("recordings"))


@pytest.mark.parametrize("kind", KINDS)
async def test_cut_at_every_offset_gives_stream_broken_with_the_text_so_far(
    kind: str, offline: None, monkeypatch: pytest.MonkeyPatch, recordings: dict[str, Recording]
) -> None:
    rec = recordings[kind]
    problems: list[str] = []
    for ending in ENDINGS:
        # silence costs an idle timeout each: every offset near an event boundary, and a spread
        cuts = range(rec.size + 1)
        if ending == "silence" and kind != "agents":
            edges = {i + d for i, byte in enumerate(rec.body) if byte == 0x0A for d in (0, 1)}
            cuts = sorted({c for c in edges | set(range(0, rec.size + 1, 97)) | {rec.size} if 0 <= c <= rec.size})
        for cut in cuts:
            outcome = await replay(rec, cut, ending, monkeypatch)
            if problem := judge(rec, cut, ending, outcome):
                problems.append(problem)
    # a hang would end in run()'s hang guard with a bare TimeoutError, which judge() reports
    assert problems == [], problems[:10]


def url_of(kind: str, base: str) -> dict[str, str]:
    return {"api_base": base + "/v1"} if kind == "cerebras" else {"api_endpoint": base + "/api/inference"}


@pytest.mark.parametrize("kind", HTTP_KINDS)
async def test_real_socket_cut_closed_reset_or_silent(
    kind: str, offline: None, monkeypatch: pytest.MonkeyPatch, recordings: dict[str, Recording]
) -> None:
    """The recorded response, chunked on a real socket, cut in its head, at and inside every chunk."""
    rec = recordings[kind]
    direct(monkeypatch)
    data, bounds = wire(rec)
    problems: list[str] = []
    async with CuttingServer() as server:
        server.data = data
        for ending in ("close", "reset", "silence"):
            server.ending = ending
            silent_cuts = [bounds[len(bounds) // 2]] + ([bounds[0]] if kind == "cerebras" else [])
            cuts = offsets(data, bounds) if ending != "silence" else silent_cuts
            for cut in cuts:
                server.cut = cut
                outcome = await run(rec, 0.25, connect_timeout=0.5, **url_of(kind, server.url), **explicit(rec))
                if ending == "silence":  # the head alone: the wait for a first byte is bounded too
                    expected = Timeout if cut == bounds[0] else StreamTimeout
                    if not isinstance(outcome.error, expected):
                        problems.append(f"silent at {cut}: {outcome.error!r} instead of {expected.__name__}")
                if problem := judge(rec, body_offset(data, bounds, cut), ending, outcome):
                    problems.append(problem)
    assert problems == [], problems[:10]  # a typed timeout each time, not run()'s hang guard


async def test_a_server_silent_before_its_headers_is_bounded(
    offline: None, monkeypatch: pytest.MonkeyPatch, recordings: dict[str, Recording]
) -> None:
    """The head never completes: the wait ends after the connect + idle timeouts."""
    rec = recordings["cerebras"]
    direct(monkeypatch)
    data, bounds = wire(rec)
    async with CuttingServer() as server:
        server.data, server.cut, server.ending = data, bounds[0] // 2, "silence"
        outcome = await run(rec, 0.25, connect_timeout=0.5, **url_of("cerebras", server.url), **explicit(rec))
    # the client's own Timeout (not run()'s hang guard), and not before connect + idle had passed
    assert isinstance(outcome.error, Timeout) and outcome.seconds > 0.7, outcome


@pytest.mark.parametrize("kind", KINDS)
async def test_sandbox_cutting_after_every_chunk_or_falling_silent(
    kind: str, client_env: ClientEnv, recordings: dict[str, Recording]
) -> None:
    """Through the proxy and TLS (the socket too): the sandbox drops the connection after chunk N
    (no terminal chunk, no close frame), for every N; then it stops sending mid-stream."""
    rec = recordings[kind]
    route = "cerebras.chat" if kind == "cerebras" else "cloudflare.chat"
    set_knobs(client_env.sandbox, kind)
    problems: list[str] = []
    lengths: list[int] = []
    for index in range(60):
        client_env.sandbox.fault(route, truncate_after=index)
        outcome = await run(rec, 2.0)
        if problem := judge(rec, None, f"sandbox truncate_after={index}", outcome):
            problems.append(problem)
        lengths.append(len(outcome.text))
        if outcome.error is None:
            break
    assert problems == [] and outcome.error is None, problems[:10]
    assert lengths == sorted(lengths) and lengths[-1] == len(rec.text) and len(lengths) > 5
    if kind not in ("cerebras", "agents"):
        return  # the HTTP generations fell silent on a real socket above already
    set_knobs(client_env.sandbox, kind, pace=1.0)
    outcome = await run(rec, 0.25)
    assert isinstance(outcome.error, StreamTimeout), outcome  # the idle timeout, not run()'s guard
    assert rec.text.startswith(outcome.error.text) and outcome.error.text == outcome.text


LINE = 10 * 1024 * 1024
SHAPES = {  # what is sent: a head, then a filler repeated to 10 MB; the memory it may take
    "one 10 MB SSE line": (b'data: {"choices":[{"delta":{"content":"', b"a", 4 * MAX_LINE),
    "one 10 MB data-stream line": (b'0:"', b"a", 4 * MAX_LINE),
    # 1 MiB of event data in 75,000 lines is 75,000 str objects: bounded, but not by 1 MiB
    "10 MB of short data lines in one event": (b"", b"data: aaaaaaa\n", 12 * MAX_LINE),
}


@pytest.mark.parametrize("shape", SHAPES)
async def test_a_10_mb_line_is_refused_with_bounded_memory(shape: str, offline: None, monkeypatch: pytest.MonkeyPatch) -> None:
    kind = "data-stream" if "data-stream" in shape else "cerebras"
    head, filler, bound = SHAPES[shape]
    rec = Recording(kind, "", headers=[("content-type", "text/event-stream" if kind == "cerebras" else "text/plain")])
    trickle = Trickle(head, filler, LINE)
    provider = Cerebras if kind == "cerebras" else Cloudflare

    async def send(request: Request) -> Response:
        return Response(FakeRaw(rec, b"", "close", trickle), None, provider.site, request.url)  # type: ignore[arg-type]

    monkeypatch.setattr(provider._transport, "send", send)
    tracemalloc.start()
    try:
        outcome = await run(rec, 5.0, **explicit(rec))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(outcome.error, ProtocolError) and "limit" in str(outcome.error), outcome
    assert trickle.made < 2 * MAX_LINE  # reading stopped at the limit, not at the end
    assert peak < bound, f"peak {peak / 2**20:.1f} MiB"


async def test_a_10_mb_line_on_a_real_socket(offline: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client stops reading and drops the connection: the server cannot send the 10 MB."""
    rec = Recording("cerebras", "")
    direct(monkeypatch)
    async with CuttingServer() as server:
        server.data = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        server.cut, server.ending = len(server.data), "close"
        piece = b"a" * 65536
        server.endless = b"%x\r\n%s\r\n" % (len(piece), piece)
        tracemalloc.start()
        try:
            outcome = await run(rec, 5.0, **url_of("cerebras", server.url), **explicit(rec))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        await asyncio.sleep(0.2)
    assert isinstance(outcome.error, ProtocolError), outcome  # refused by the line limit, not run()'s hang guard
    assert server.sent[0] < LINE, f"the server sent {server.sent[0] / 2**20:.1f} MiB"
    assert peak < 8 * MAX_LINE, f"peak {peak / 2**20:.1f} MiB"
