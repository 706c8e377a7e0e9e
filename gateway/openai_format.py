"""OpenAI's response shapes, built from the client's events: pure functions, no I/O.

A streamed answer is a ``chat.completion.chunk`` per event (a role chunk first, the finish
reason in a last chunk, the usage in one more when asked for), each as an SSE ``data:`` line,
then ``data: [DONE]``. Text (or reasoning) events that are sent together, because they came in
one network read or while the last write was under way, go out as one delta of their joined text.
A whole answer is one ``chat.completion``.
"""

from __future__ import annotations

import json
import secrets
import time
from itertools import groupby
from typing import Any

import msgspec

from harvestkit.client import (
    ChatResult,
    Event,
    FinishReason,
    Reasoning,
    ToolCalls,
    Usage,
)

__all__ = [
    "DONE",
    "ChunkBuilder",
    "completion",
    "completion_id",
    "error_body",
    "model_object",
    "sse",
    "usage_object",
]

DONE = b"data: [DONE]\n\n"


def sse(payload: dict[str, Any]) -> bytes:
    """One SSE event carrying ``payload`` as compact JSON."""
    return b"data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


_string = msgspec.json.encode  # a str as JSON, UTF-8 unescaped, as json.dumps(ensure_ascii=False)
_TEXT_ONLY = {str}


def completion_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


def usage_object(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def error_body(message: str, type: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error object: ``{"error": {"message", "type", "code", "param"}}``."""
    return {"error": {"message": message, "type": type, "code": code, "param": param}}


def model_object(model_id: str, owner: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": owner}


class ChunkBuilder:
    """Turns one answer's events into ``chat.completion.chunk`` objects, in order."""

    def __init__(self, model: str, *, include_usage: bool = False, id: str | None = None) -> None:
        self.id = id or completion_id()
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.tool_calls = 0
        self._text = self._template("content")
        self._reasoning = self._template("reasoning")

    def _template(self, key: str) -> tuple[bytes, bytes]:
        """The SSE bytes of a one-field delta chunk, before and after the field's JSON string."""
        before, after = sse(self._delta({key: "\u0000"})).split(b'"\\u0000"')
        return before, after

    def encode(self, event: Event) -> bytes:
        """The SSE bytes of the chunks ``event`` gives: ``sse(chunk)`` for each of
        :meth:`event`; a text or reasoning delta is written into a pre-encoded chunk."""
        if event.__class__ is str:
            if not event:
                return b""
            before, after = self._text
            return before + _string(event) + after
        if isinstance(event, Reasoning) and event.text:
            before, after = self._reasoning
            return before + _string(event.text) + after
        return b"".join(sse(chunk) for chunk in self.event(event))

    def encode_batch(self, events: list[Event]) -> bytes:
        """The SSE bytes of events sent at once: each run of text events (or of reasoning
        events) becomes one delta of their joined text, any other event :meth:`encode` gives.
        Nothing waits for this: the events are all in hand, and an OpenAI delta may hold any
        length of text (a backlog of 500 tokens costs one chunk, not 500)."""
        if set(map(type, events)) == _TEXT_ONLY:  # most batches
            return self.encode("".join(events))
        return b"".join(self.encode(event) for event in merged(events))

    def _chunk(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def _delta(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return self._chunk([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}])

    def role(self) -> dict[str, Any]:
        """The first chunk: the assistant's role."""
        return self._delta({"role": "assistant", "content": ""})

    def event(self, event: Event) -> list[dict[str, Any]]:
        """The chunks one event gives (none for usage and finish reason, kept for the end)."""
        if isinstance(event, str):
            return [self._delta({"content": event})] if event else []
        if isinstance(event, Reasoning):
            return [self._delta({"reasoning": event.text})] if event.text else []
        if isinstance(event, ToolCalls):
            calls = []
            for call in event.calls:
                calls.append({"index": self.tool_calls, **call})
                self.tool_calls += 1
            return [self._delta({"tool_calls": calls})] if calls else []
        if isinstance(event, Usage):
            self.usage = event
        elif isinstance(event, FinishReason):
            self.finish_reason = event.reason
        return []

    def finish(self) -> list[dict[str, Any]]:
        """The last chunks: the finish reason, then the usage if it was asked for and is known."""
        reason = self.finish_reason or ("tool_calls" if self.tool_calls else "stop")
        chunks = [self._delta({}, reason)]
        if self.include_usage and self.usage is not None:
            last = self._chunk([])
            last["usage"] = usage_object(self.usage)
            chunks.append(last)
        return chunks


def merged(events: list[Event]) -> list[Event]:
    """``events`` with each run of text events, and each run of :class:`Reasoning` events, joined
    into one. :class:`Usage` and :class:`FinishReason`, which only end up in the last chunks,
    move to the end and, like empty text, do not break a run; everything else keeps its order."""
    out: list[Event] = []
    silent: list[Event] = []
    for kind, run in groupby(events, type):  # a run of one type at C speed, however long
        if kind is str or kind is Reasoning:
            text = "".join(run) if kind is str else "".join([event.text for event in run])
            if not text:
                continue
            if out and type(out[-1]) is kind:  # the same kind across a silent or empty event
                text = (out.pop() if kind is str else out.pop().text) + text
            out.append(text if kind is str else Reasoning(text))
        elif kind is Usage or kind is FinishReason:
            silent.extend(run)
        else:
            out.extend(run)
    return out + silent


def completion(result: ChatResult, model: str, *, id: str | None = None) -> dict[str, Any]:
    """A whole answer as one ``chat.completion``."""
    message: dict[str, Any] = {"role": "assistant", "content": result.text or None}
    if result.reasoning:
        message["reasoning"] = result.reasoning
    if result.tool_calls:
        message["tool_calls"] = list(result.tool_calls)
    elif message["content"] is None:
        message["content"] = ""
    reason = result.finish_reason or ("tool_calls" if result.tool_calls else "stop")
    body: dict[str, Any] = {
        "id": id or completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reason}],
    }
    if result.usage is not None:
        body["usage"] = usage_object(result.usage)
    return body
