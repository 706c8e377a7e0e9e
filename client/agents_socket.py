"""The Cloudflare playground's agents WebSocket: one chat, or one ``getModels`` RPC, per socket.

Frames are built and decoded by :mod:`harvestkit.client.parsers.agents`; this module only
drives the conversation: the server's greeting (its announced state), our state on top of it,
the request, responses until ``done``, and a cancel frame when the caller leaves early.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from .errors import ClientError, ConnectError, ProtocolError, StreamTimeout
from .events import Event
from .parsers.agents import (
    AgentChatParser,
    cancel_frame,
    chat_request_frame,
    frame_head,
    parse_rpc_reply,
    parse_state,
    resume_ack_frame,
    resume_request_frame,
    rpc_frame,
    state_frame,
)
from .base_transport import WebSocketConnection as WebSocket

__all__ = ["agent_chat", "agent_models", "agent_url"]


def agent_url(base: str) -> str:
    """A fresh agent's socket URL under the playground's ``base`` URL."""
    host = base.split("://", 1)[-1].split("/", 1)[0]
    name = f"Cloudflare-AI-Playground-{uuid.uuid4().hex[:21]}"
    return f"wss://{host}/agents/playground/{name}?_pk={uuid.uuid4()}"


def rejoin_url(url: str) -> str:
    """Another socket to the same agent as ``url`` (a new ``_pk``, as a reconnecting page has)."""
    return f"{url.split('?', 1)[0]}?_pk={uuid.uuid4()}"


RESUMES = 1
"""How many times an answer whose socket dropped is resumed on a new socket to the same agent."""


async def _frame(ws: WebSocket, idle: Callable[[], float]) -> str | None:
    """The next frame; a silence beyond the idle timeout is :class:`StreamTimeout` (the
    stream adds the text so far)."""
    wait = idle()
    try:
        return await ws.recv(wait)
    except TimeoutError:
        raise StreamTimeout(f"no frame for {wait:g} s", provider=ws.provider) from None


GREETING_WAIT = 3.0
"""Seconds to wait for the state a server announces on connect: one that waits for the client
to speak first (an older generation, a replayed recording) gets the client's state alone."""


async def announced_state(ws: WebSocket, idle: Callable[[], float]) -> dict[str, Any] | None:
    """The state the server announces on connect (spec 4.2: ``cf_agent_identity``, then
    ``cf_agent_state``, then the rest); None if another frame comes first, none comes within
    :data:`GREETING_WAIT`, or the socket closed. The frames read here come before our request,
    so none of them is part of our answer."""
    def wait() -> float:
        return min(idle(), GREETING_WAIT)

    try:
        while (frame := await _frame(ws, wait)) is not None:
            state = parse_state(frame)
            if state is not None:
                return state
            if frame_head(frame)[0] != "cf_agent_identity":
                return None
    except StreamTimeout:
        return None
    return None


async def agent_chat(
    ws: WebSocket,
    model: str,
    messages: list[dict[str, Any]],
    idle: Callable[[], float],
    *,
    temperature: float = 1,
    reconnect: Callable[[], Awaitable[WebSocket]] | None = None,
) -> AsyncGenerator[list[Event], None]:
    """Chat over a connected agent socket; the system message goes into the agent's state,
    which is sent on top of the one the server announced (the client's replaces it whole). Yields
    the events of the frames each network read brought as one batch.

    If the socket drops before the answer's end, ``reconnect`` opens another one to the same
    agent, which goes on with the answer (spec 4.2: the agent outlives its socket): the client
    asks to resume, acknowledges ``cf_agent_stream_resuming`` and reads the replay, whose frames
    it has seen are skipped. An agent that has nothing to resume ends the stream as it was."""
    system = "\n\n".join(str(m.get("content") or "") for m in messages if m.get("role") == "system")
    conversation = [m for m in messages if m.get("role") != "system"]
    request_id = f"req_{uuid.uuid4().hex[:12]}"
    parser = AgentChatParser(request_id, ws.provider)
    finished = False
    try:
        base = await announced_state(ws, idle)
        await ws.send(state_frame(model, temperature=temperature, system=system, base=base))
        await ws.send(chat_request_frame(request_id, conversation))
        resumes = RESUMES if reconnect is not None else 0
        while not parser.done:
            try:
                frame = await _frame(ws, idle)
            except ConnectError:  # the socket broke: as a drop, once the resume is tried
                if not resumes:
                    raise
                frame = None
            if frame is None:
                if not resumes or reconnect is None:
                    break
                resumes -= 1
                await ws.aclose()
                ws = await reconnect()
                if not await resume(ws, request_id, idle):
                    break
                continue
            batch = parser.feed(frame)
            try:
                for more in ws.buffered():  # the rest of what the same read brought: one batch
                    batch += parser.feed(more)
            except ClientError:
                if batch:  # nothing that arrived is lost
                    yield batch
                raise
            if batch:
                yield batch
        batch = parser.close()
        if batch:
            yield batch
        finished = True
    finally:
        if not finished:
            with contextlib.suppress(Exception):
                await ws.send(cancel_frame(request_id))
        await ws.aclose()


async def resume(ws: WebSocket, request_id: str, idle: Callable[[], float]) -> bool:
    """Ask a new socket to the agent for the rest of answer ``request_id``: True once the agent
    said it is resuming it and was acknowledged; False if it has nothing to resume."""
    await ws.send(resume_request_frame())
    try:
        while (frame := await _frame(ws, idle)) is not None:
            kind, frame_of = frame_head(frame)
            if kind == "cf_agent_stream_resuming" and frame_of == request_id:
                await ws.send(resume_ack_frame(request_id))
                return True
            if kind == "cf_agent_stream_resume_none":
                return False
    except StreamTimeout:
        return False
    return False


async def agent_models(ws: WebSocket, idle: Callable[[], float]) -> Any:
    """The ``getModels`` RPC result (a list of model objects)."""
    rpc_id = f"r{uuid.uuid4().hex[:8]}"
    try:
        await ws.send(rpc_frame(rpc_id))
        parts: list[Any] = []
        while True:
            frame = await _frame(ws, idle)
            if frame is None:
                raise ProtocolError("the socket closed before the model list came", provider=ws.provider)
            reply = parse_rpc_reply(frame, rpc_id, ws.provider)
            if reply is None:
                continue
            parts.extend(reply.result if isinstance(reply.result, list) else [reply.result])
            if reply.done:
                return parts
    finally:
        await ws.aclose()
