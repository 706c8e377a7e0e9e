"""``POST /v1/chat/completions``: one provider stream, answered whole or as SSE chunks.

The response starts only once the provider's first event is in, so a failure before any
output (no session, 429, unknown model) still gets its HTTP status; a later one becomes an SSE
error event (``data: {"error": {...}}``) and the stream ends without ``[DONE]``. Leaving early
(the client disconnects, the handler is cancelled) closes the provider stream at once. The
events go out as :func:`.relay.relay` coalesces them, the text in hand as one delta.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from harvestkit.client import ChatStream

from .chat_request import ChatRequest, parse_chat_request
from .errors import GatewayError
from .observe import INFO
from .openai_format import DONE, ChunkBuilder, completion, sse
from .relay import relay
from .state import GATEWAY
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
    interval = request.app[GATEWAY].stream_flush
    failure = None if first is None else await relay(
        response, stream, builder.encode_batch, interval=interval, model=model, sent_as="an SSE error event"
    )
    if failure is None:
        await _write(response, builder.finish())
        await response.write(DONE)
    else:
        await response.write(sse(failure.body()))
    await response.write_eof()
    return response
