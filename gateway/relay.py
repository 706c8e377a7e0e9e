"""The rest of a provider stream to an SSE client, in as few writes as keep it live.

Both streaming APIs (chat completions, responses) relay through :func:`relay`. A reader task
collects the provider's events while the writer sends them. A write goes out as soon as events
are in hand, unless the previous one left less than ``interval`` seconds ago: then the writer
waits out the rest of the interval, and everything that arrived meanwhile goes out as one write.

At a person's reading pace (a token every few ms) nothing ever waits, since the interval has
long passed. A provider that sends faster than the client can take (Cerebras streams thousands
of tokens a second) gets at most one write per interval. That saves a system call, a wake-up of
the client and a chunk for it to parse per provider read, and holds no event back longer than
``interval``. The end of the stream and a failure are sent at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from aiohttp import web
from harvestkit.client import ChatStream, Event

from .errors import GatewayError, mid_stream

__all__ = ["relay"]


async def relay(
    response: web.StreamResponse,
    stream: ChatStream,
    encode: Callable[[list[Event]], bytes],
    *,
    interval: float,
    model: str,
    sent_as: str,
) -> GatewayError | None:
    """Send the rest of ``stream`` as ``encode`` frames it. Returns the upstream failure that
    ended the stream early, if any (``sent_as`` names how the caller sends it, for the log).
    A failed write (the client left) propagates, and the reader is stopped."""
    pending: list[Event] = []
    arrived = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def read() -> GatewayError | None:
        try:
            async for batch in stream.batches():
                pending.extend(batch)
                arrived.set()
        except Exception as error:
            return mid_stream(error, model, sent_as)
        finally:
            arrived.set()
        return None

    reader = asyncio.create_task(read())
    next_write = 0.0  # the loop time before which a write waits
    try:
        while True:
            await arrived.wait()
            wait = next_write - loop.time()
            if wait > 0 and not reader.done():  # wait out the interval, or the stream's end
                await asyncio.wait((reader,), timeout=wait)
            arrived.clear()
            done = reader.done()  # before taking the events: nothing can be added after this
            if pending:
                data = encode(pending)
                pending.clear()
                if data:
                    await response.write(data)
                    next_write = loop.time() + interval
            if done:
                return reader.result()
    finally:
        if not reader.done():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
