"""``POST /v1/chat/completions``: one provider stream, answered whole or as SSE chunks.

The response starts only once the provider's first event is in, so a failure before any
output (no session, 429, unknown model) still gets its HTTP status; a later one becomes an SSE
error event (``data: {"error": {...}}``) and the stream ends without ``[DONE]``. Leaving early
(the client disconnects, the handler is cancelled) closes the provider stream at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web
from harvestkit.client import ChatStream, Event

from .chat_request import ChatRequest, parse_chat_request
from .errors import GatewayError, mid_stream
from .openai_format import DONE, ChunkBuilder, completion, sse
from .observe import INFO
from .upstream import open_stream

__all__ = ["SSE_HEADERS", "chat_completions", "read_body"]

SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
BODY_TIMEOUT = 30.0  # seconds to receive a request body: a trickling client does not hold a socket


async def read_body(request: web.Request) -> bytes:
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            return await request.read()
    except TimeoutError:
        raise GatewayError(408, f"the request body did not arrive within {BODY_TIMEOUT:g} s", code="request_timeout") from None


async def chat_completions(request: web.Request) -> web.StreamResponse:
    chat = parse_chat_request(await read_body(request))
    stream = await open_stream(request, chat.model, chat.messages, chat.params)
    async with stream:
        model = f"{request[INFO].provider}/{stream.model}"
        if not chat.stream:
            return web.json_response(completion(await stream.collect(), model))
        return await _streamed(request, stream, chat, model)


async def _write(response: web.StreamResponse, chunks: list[dict[str, Any]]) -> None:
    if chunks:
        await response.write(b"".join(sse(chunk) for chunk in chunks))


async def _streamed(request: web.Request, stream: ChatStream, chat: ChatRequest, model: str) -> web.StreamResponse:
    builder = ChunkBuilder(model, include_usage=chat.include_usage)
    first = await anext(stream, None)  # a failure here is answered with its status
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    await _write(response, [builder.role(), *(builder.event(first) if first is not None else [])])
    failure = None if first is None else await _relay(response, stream, builder)
    if failure is None:
        await _write(response, builder.finish())
        await response.write(DONE)
    else:
        await response.write(sse(failure.body()))
    await response.write_eof()
    return response


async def _relay(response: web.StreamResponse, stream: ChatStream, builder: ChunkBuilder) -> GatewayError | None:
    """Send the rest of the stream; the upstream failure that ended it early, if any.

    A reader task collects the events while this loop writes: whatever arrived while the last
    write was under way goes out as one write, its text as one delta (:meth:`ChunkBuilder.encode_batch`),
    so a burst of events (one network read of the provider holds hundreds) costs one chunk and
    one write, and a lone event is not held back. A failed write (the client left) propagates,
    and the reader is stopped."""
    pending: list[Event] = []
    arrived = asyncio.Event()

    async def read() -> GatewayError | None:
        try:
            async for batch in stream.batches():
                pending.extend(batch)
                arrived.set()
        except Exception as error:
            return mid_stream(error, builder.model, "an SSE error event")
        finally:
            arrived.set()
        return None

    reader = asyncio.create_task(read())
    try:
        while True:
            await arrived.wait()
            arrived.clear()
            done = reader.done()  # before taking the events: nothing can be added after this
            if pending:
                data = builder.encode_batch(pending)
                pending.clear()
                if data:
                    await response.write(data)
            if done:
                return reader.result()
    finally:
        if not reader.done():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
