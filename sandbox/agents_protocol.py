"""The agents WebSocket's two shapes (spec 4.2), chosen by the `agents_protocol` knob:

- "2026", as the agents SDK speaks today: the client's `cf_agent_state` replaces the state and is
  not echoed; `finish` is `{"type":"finish","messageMetadata":{"finishReason":...}}` with no
  usage; an error is a frame with `error: true` and a plain-text body, then a done frame; the
  server adds `cf_agent_stream_resume_none` (with `reason` and `probeId`), and before an answer
  `cf_agent_stream_pending`; the default model is `@cf/moonshotai/kimi-k2.6`.
- "legacy", as it was: the state echoed, usage in `finish`, JSON error bodies.

The `agents_resume` knob ("none", "replay" or "own") makes a 2026 server open with the replay of
an earlier stream of the agent ("replay": `cf_agent_stream_resuming`, frames marked `replay: true`,
and one marked `replayComplete`, all for another request id, which a client must not take for its
own), or resume the client's own stream midway ("own": the same frames for the client's request
id, re-sending its answer from the start, then the live rest; a client must not double the text).
`agents_recovering` makes the agent recover midway, as after an eviction or a stalled stream:
`cf_agent_chat_recovering` with `recovering: true`, a pause, then `recovering: false`.
"""
from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

AGENTS_PROTOCOLS = ("2026", "legacy")
AGENTS_RESUME = ("none", "replay", "own")
RECOVERY_PAUSE = 0.05  # seconds between the two recovering frames
DEFAULT_MODELS = {"2026": "@cf/moonshotai/kimi-k2.6", "legacy": "@cf/meta/llama-3.3-70b-instruct-fp8-fast"}


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def initial_state(protocol: str) -> dict[str, Any]:
    """The agent's state before the client sets it."""
    state: dict[str, Any] = {
        "model": DEFAULT_MODELS[protocol],
        "temperature": 1,
        "stream": True,
        "system": "You are a helpful assistant.",
        "useExternalProvider": False,
    }
    if protocol == "2026":
        state.update(externalProvider=None, authMethod="none", generativeUI=False)
    return state


def echoes_state(protocol: str) -> bool:
    """Whether the server sends the client's own `cf_agent_state` back to it."""
    return protocol == "legacy"


def after_greeting(protocol: str, resume: str) -> Iterator[dict[str, Any]]:
    """Frames a 2026 server sends after identity, state and MCP servers."""
    if protocol != "2026":
        return
    if resume == "replay":
        old = "req_" + secrets.token_hex(6)
        yield {"type": "cf_agent_stream_resuming", "id": old}
        body = _compact({"type": "text-delta", "id": "t0", "delta": "an earlier answer"})
        yield {"type": "cf_agent_use_chat_response", "id": old, "body": body, "done": False, "replay": True}
        yield {"type": "cf_agent_use_chat_response", "id": old, "body": "", "done": True, "replay": True, "replayComplete": True}
    else:
        yield {"type": "cf_agent_stream_resume_none", "reason": "idle", "probeId": str(uuid.uuid4())}


def resume_answer(protocol: str) -> dict[str, Any]:
    """The answer to a client's `cf_agent_stream_resume_request` when nothing is streaming."""
    if protocol == "2026":
        return {"type": "cf_agent_stream_resume_none", "reason": "idle", "probeId": str(uuid.uuid4())}
    return {"type": "cf_agent_stream_resume_none"}


def recovering(request_id: str, on: bool) -> dict[str, Any]:
    """The status frame of a turn being recovered (`on`), or done recovering."""
    return {"type": "cf_agent_chat_recovering", "recovering": on, "id": request_id}


def resuming(request_id: str) -> dict[str, Any]:
    """The agent is about to resume stream `request_id` (it replays once acknowledged)."""
    return {"type": "cf_agent_stream_resuming", "id": request_id}


def replay(request_id: str, sent: list[str]) -> Iterator[dict[str, Any]]:
    """Every body sent so far again, marked `replay`, the last one also `replayComplete`; bodies
    added to `sent` while this runs are replayed too (the list is read as it goes)."""
    for index, body in enumerate(sent):
        frame: dict[str, Any] = {"type": "cf_agent_use_chat_response", "id": request_id, "body": body, "done": False, "replay": True}
        if index == len(sent) - 1:
            frame["replayComplete"] = True
        yield frame


def own_replay(request_id: str, sent: list[str]) -> Iterator[dict[str, Any]]:
    """The resumption of our own stream: `resuming`, then its `replay`."""
    yield resuming(request_id)
    yield from replay(request_id, sent)


def before_answer(protocol: str, request_id: str) -> Iterator[dict[str, Any]]:
    if protocol == "2026":
        yield {"type": "cf_agent_stream_pending", "id": request_id}


def shape_chunk(protocol: str, chunk: dict[str, Any]) -> dict[str, Any]:
    """A UI chunk as this protocol sends it: a 2026 `finish` has its reason in metadata, no usage."""
    if protocol == "2026" and chunk.get("type") == "finish":
        return {"type": "finish", "messageMetadata": {"finishReason": chunk.get("finishReason", "stop")}}
    return chunk


def error_frames(protocol: str, request_id: str, text: str) -> list[str]:
    """The frames that report an error for `request_id`."""
    if protocol == "2026":
        return [
            _compact({"type": "cf_agent_use_chat_response", "id": request_id, "error": True, "body": text, "done": False}),
            _compact({"type": "cf_agent_use_chat_response", "id": request_id, "body": "", "done": True}),
        ]
    body = _compact({"type": "error", "errorText": text})
    return [_compact({"type": "cf_agent_use_chat_response", "id": request_id, "body": body, "done": True, "error": True})]
