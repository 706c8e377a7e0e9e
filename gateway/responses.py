"""``POST /v1/responses`` (and ``GET``/``DELETE /v1/responses/{id}`` for stored ones).

Each request is one chat call upstream. ``previous_response_id`` continues a response kept in
the gateway's bounded in-memory store (``store`` true, the default; see
:mod:`.response_store`); an id the store does not hold is a 400 saying why. As with chat
completions, the response starts only once the provider's first event is in, so a failure
before any output keeps its HTTP status; a later one is sent as ``response.failed``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from harvestkit.client import ChatStream

from .chat import SSE_HEADERS, read_body
from .chat_request import invalid
from .errors import GatewayError
from .observe import INFO
from .relay import relay
from .responses_format import ResponseBuilder, sse_event
from .responses_request import ResponsesRequest, parse_responses_request
from .state import GATEWAY
from .upstream import open_stream

__all__ = ["create_response", "delete_response", "get_response"]


def _history(request: web.Request, body: ResponsesRequest) -> list[dict[str, Any]]:
    if body.previous_response_id is None:
        return []
    store = request.app[GATEWAY].store
    previous = store.get(request[INFO].key_name, body.previous_response_id)
    if previous is None:
        minutes = store.max_age / 60
        raise invalid(
            f"previous_response_id '{body.previous_response_id[:80]}' is not in this gateway's store: it keeps the "
            f"last {store.max_entries} responses made with store=true for {minutes:g} minutes, in memory, per key "
            "(a restart forgets them); send the whole conversation as input instead",
            "previous_response_id",
            "previous_response_not_found",
        )
    return list(previous.messages)


async def create_response(request: web.Request) -> web.StreamResponse:
    body = parse_responses_request(await read_body(request))
    conversation = _history(request, body) + body.messages
    system = [{"role": "system", "content": body.instructions}] if body.instructions else []
    stream = await open_stream(request, body.model, system + conversation, body.params)
    async with stream:
        builder = ResponseBuilder(f"{request[INFO].provider}/{stream.model}", body)
        if body.stream:
            response = await _streamed(request, stream, builder)
        else:
            async for event in stream:
                builder.event(event)
            builder.finish()
            response = web.json_response(builder.response())
    if body.store and builder.status in ("completed", "incomplete"):
        request.app[GATEWAY].store.put(request[INFO].key_name, conversation + builder.as_messages(), builder.response())
    return response


async def _write(response: web.StreamResponse, events: list[dict[str, Any]]) -> None:
    if events:
        await response.write(b"".join(sse_event(event) for event in events))


async def _streamed(request: web.Request, stream: ChatStream, builder: ResponseBuilder) -> web.StreamResponse:
    first = await anext(stream, None)  # a failure here is answered with its status
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    await _write(response, builder.start() + (builder.event(first) if first is not None else []))
    interval = request.app[GATEWAY].stream_flush
    failure = None if first is None else await relay(
        response, stream, builder.encode_batch, interval=interval, model=builder.model, sent_as="response.failed"
    )
    if failure is None:
        await _write(response, builder.finish())
    else:
        request[INFO].status = failure.status  # the log and the metrics count the failure
        await _write(response, builder.fail(failure.code, failure.message))
    await response.write_eof()
    return response


def _stored(request: web.Request) -> tuple[str, Any]:
    wanted = request.match_info["id"]
    return wanted, request.app[GATEWAY].store


async def get_response(request: web.Request) -> web.Response:
    wanted, store = _stored(request)
    item = store.get(request[INFO].key_name, wanted)
    if item is None:
        raise GatewayError(404, f"no stored response '{wanted[:80]}'", "invalid_request_error", "not_found", "id")
    return web.json_response(item.response)


async def delete_response(request: web.Request) -> web.Response:
    wanted, store = _stored(request)
    if not store.delete(request[INFO].key_name, wanted):
        raise GatewayError(404, f"no stored response '{wanted[:80]}'", "invalid_request_error", "not_found", "id")
    return web.json_response({"id": wanted, "object": "response.deleted", "deleted": True})
