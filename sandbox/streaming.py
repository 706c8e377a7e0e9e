"""Sending a stream at the configured pace, with the failures a test asked for."""
from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from aiohttp import web

from . import keys
from .state import Fault, Knobs

KNOBS = web.AppKey("harvestkit.streaming.knobs", Callable[[], Knobs])  # set on the root application

T = TypeVar("T")
COALESCE = 16 * 1024


def varied_write(data: bytes, rng: random.Random, *, cut: bool = True) -> tuple[int, list[bytes]]:
    """A loaded server's write of `data`: how much to gather before the next write (1 to 32 KiB),
    and `data` as one piece or, half the time when `cut`, two cut at a random place."""
    target = rng.randint(1024, 2 * COALESCE)
    if cut and len(data) > 1 and rng.random() < 0.5:
        at = rng.randrange(1, len(data))
        return target, [data[:at], data[at:]]
    return target, [data]


async def pump(
    chunks: Iterable[T],
    send: Callable[[T], Awaitable[None]],
    *,
    fault: Fault | None,
    pace: float,
    malformed: T,
    error: T,
) -> str:
    """Send `chunks` one by one; return "complete", "truncated", "reset" or "error".

    A fault's `malformed_at` replaces that chunk with `malformed`; `error_at` sends `error` in place
    of that chunk and stops; `truncate_after` and `reset_after` stop after that many chunks without
    the rest (the caller then cuts the connection or resets the stream). Connection errors from
    `send` propagate.
    """
    for index, chunk in enumerate(chunks):
        if fault is not None:
            if fault.truncate_after is not None and index >= fault.truncate_after:
                return "truncated"
            if fault.reset_after is not None and index >= fault.reset_after:
                return "reset"
            if fault.error_at is not None and index == fault.error_at:
                await send(error)
                return "error"
            if fault.malformed_at is not None and index == fault.malformed_at:
                chunk = malformed
        await send(chunk)
        if pace > 0:
            await asyncio.sleep(pace)
    return "complete"


async def stream_http(
    request: web.Request,
    response: web.StreamResponse,
    chunks: Iterable[bytes],
    *,
    fault: Fault | None,
    pace: float,
    malformed: bytes,
    error: bytes,
) -> web.StreamResponse:
    """Stream `chunks` as the body of `response`; record the outcome in the request log.

    Unpaced, chunks are written in pieces of about 16 KiB, as a fast server's TCP segments
    carry many events at once; paced, each chunk is written (and arrives) on its own. With the
    `split_writes` knob (the default) the sizes vary as a real server's do: the unpaced pieces
    are 1 to 32 KiB, and on HTTP/1.1 a write may be cut in two at a random place (on HTTP/2 the
    DATA frames are cut instead, see h2server.py). No event boundary is promised to a client.
    """
    await response.prepare(request)
    pending = bytearray()
    variety = writes_vary(request)
    rng = random.Random()
    coalesce = COALESCE

    async def flush() -> None:
        nonlocal coalesce
        if not pending:
            return
        data = bytes(pending)
        pending.clear()
        if variety:
            coalesce, pieces = varied_write(data, rng, cut=not is_h2(request))
            for piece in pieces[:-1]:
                await response.write(piece)
                await asyncio.sleep(0)  # let the first piece go out on its own
            data = pieces[-1]
        await response.write(data)

    sent = 0

    async def send(chunk: bytes) -> None:
        nonlocal sent
        if fault is not None and fault.goaway_after == sent:
            await flush()
            goaway(request, response, fault.goaway_graceful)
        sent += 1
        pending.extend(chunk)
        if pace > 0 or len(pending) >= coalesce:
            await flush()

    try:
        outcome = await pump(chunks, send, fault=fault, pace=pace, malformed=malformed, error=error)
        await flush()
    except ConnectionError:
        request[keys.OUTCOME] = "client_disconnected"
        return response
    except asyncio.CancelledError:
        request[keys.OUTCOME] = "client_disconnected"
        raise
    request[keys.OUTCOME] = outcome
    if outcome == "reset":
        reset_stream(request)
        return response
    if outcome == "truncated":
        # No terminal chunk and no final event: the client sees the connection end mid-body.
        response.force_close()
        if request.transport is not None:
            request.transport.close()  # after what was written, unlike abort()
        return response
    await response.write_eof()
    return response


def is_h2(request: web.Request) -> bool:
    transport = request.transport
    return transport is not None and transport.get_extra_info("h2_stream_id") is not None


def writes_vary(request: web.Request) -> bool:
    """Whether the `split_writes` knob is on for this request's sandbox."""
    knobs = request.config_dict.get(KNOBS)
    return bool(knobs is not None and knobs().split_writes)


def goaway(request: web.Request, response: web.StreamResponse, graceful: bool) -> None:
    """GOAWAY on this request's HTTP/2 connection; on HTTP/1.1, `Connection: close` after this
    answer (graceful) or the connection cut now."""
    transport = request.transport
    if transport is None:
        return
    send = getattr(transport, "goaway", None)
    if send is not None:
        send(graceful)
    elif graceful:
        response.force_close()
    else:
        transport.abort()


def reset_stream(request: web.Request) -> None:
    """Cut this request's answer short: RST_STREAM on HTTP/2, a reset connection on HTTP/1.1."""
    transport = request.transport
    if transport is None:
        return
    reset = getattr(transport, "reset_stream", None)
    if reset is not None:
        reset()
    else:
        transport.abort()
