"""OpenAI's Responses API shapes, built from the client's events: pure functions, no I/O.

:class:`ResponseBuilder` turns one answer's events into the documented stream events
(``response.created``, ``response.in_progress``, then per output item ``output_item.added``,
``content_part.added``, ``output_text.delta``/``.done`` or ``reasoning_text.delta``/``.done`` or
``function_call_arguments.delta``/``.done``, ``content_part.done``, ``output_item.done``, and
last ``response.completed``, ``response.incomplete`` or ``response.failed``), each with its
``sequence_number``; the finished ``response`` object is the whole (non-streamed) answer.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from harvestkit.client import Event, FinishReason, Reasoning, ToolCalls, Usage

from .openai_format import merged
from .responses_request import ResponsesRequest

__all__ = ["ResponseBuilder", "response_id", "sse_event"]


def response_id() -> str:
    return "resp_" + secrets.token_hex(16)


def _item_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


def sse_event(event: dict[str, Any]) -> bytes:
    """One Responses API stream event: ``event: <type>`` and its JSON ``data:``."""
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


def usage_object(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens,
    }


class ResponseBuilder:
    """One response: its stream events in order, and the ``response`` object at any moment."""

    def __init__(self, model: str, request: ResponsesRequest, *, id: str | None = None) -> None:
        self.id = id or response_id()
        self.created_at = int(time.time())
        self.model = model
        self.request = request
        self.output: list[dict[str, Any]] = []
        self.status = "in_progress"
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.error: dict[str, Any] | None = None
        self._sequence = 0
        self._open: dict[str, Any] | None = None  # the message or reasoning item being written
        self._parts: list[str] = []

    # -- the response object ---------------------------------------------------------------------
    def response(self) -> dict[str, Any]:
        request, echo = self.request, self.request.echo
        incomplete = {"reason": "max_output_tokens"} if self.status == "incomplete" else None
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": self.status,
            "error": self.error,
            "incomplete_details": incomplete,
            "instructions": request.instructions,
            "max_output_tokens": request.params.get("max_tokens"),
            "model": self.model,
            "output": [dict(item) for item in self.output],
            "parallel_tool_calls": request.params.get("parallel_tool_calls", True),
            "previous_response_id": request.previous_response_id,
            "reasoning": {"effort": request.params.get("reasoning_effort"), "summary": None},
            "store": request.store,
            "temperature": request.params.get("temperature"),
            "text": echo.get("text") or {"format": {"type": "text"}},
            "tool_choice": echo.get("tool_choice") or "auto",
            "tools": echo.get("tools") or [],
            "top_p": request.params.get("top_p"),
            "truncation": echo.get("truncation") or "disabled",
            "usage": usage_object(self.usage) if self.usage is not None else None,
            "user": request.params.get("user"),
            "metadata": echo.get("metadata") or {},
        }

    @property
    def output_text(self) -> str:
        return "".join(
            part["text"] for item in self.output if item["type"] == "message" for part in item["content"]
        )

    # -- events ----------------------------------------------------------------------------------
    def _event(self, type: str, **fields: Any) -> dict[str, Any]:
        event = {"type": type, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event

    def start(self) -> list[dict[str, Any]]:
        """``response.created`` and ``response.in_progress``."""
        return [self._event("response.created", response=self.response()),
                self._event("response.in_progress", response=self.response())]  # fmt: skip

    def _add(self, item: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.output.append(item)
        index = len(self.output) - 1
        return index, self._event("response.output_item.added", output_index=index, item=dict(item))

    def _begin(self, kind: str) -> list[dict[str, Any]]:
        """Open a message or reasoning item (closing another open one)."""
        events = self._close()
        if kind == "message":
            item = {"type": "message", "id": _item_id("msg"), "status": "in_progress", "role": "assistant", "content": []}
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        else:
            item = {"type": "reasoning", "id": _item_id("rs"), "status": "in_progress", "summary": [], "content": []}
            part = {"type": "reasoning_text", "text": ""}
        index, added = self._add(item)
        events += [added, self._event("response.content_part.added", item_id=item["id"], output_index=index,
                                      content_index=0, part=part)]  # fmt: skip
        self._open = item
        return events

    def _close(self) -> list[dict[str, Any]]:
        item, self._open = self._open, None
        if item is None:
            return []
        text, self._parts = "".join(self._parts), []
        index = self.output.index(item)
        ids = {"item_id": item["id"], "output_index": index, "content_index": 0}
        if item["type"] == "message":
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
            done = self._event("response.output_text.done", **ids, text=text, logprobs=[])
        else:
            part = {"type": "reasoning_text", "text": text}
            done = self._event("response.reasoning_text.done", **ids, text=text)
        item.update(content=[part], status="completed")
        return [done, self._event("response.content_part.done", **ids, part=dict(part)),
                self._event("response.output_item.done", output_index=index, item=dict(item))]  # fmt: skip

    def _delta(self, kind: str, text: str) -> list[dict[str, Any]]:
        events = [] if self._open is not None and self._open["type"] == kind else self._begin(kind)
        self._parts.append(text)
        item = self._open
        assert item is not None
        name = "response.output_text.delta" if kind == "message" else "response.reasoning_text.delta"
        extra = {"logprobs": []} if kind == "message" else {}
        return [*events, self._event(name, item_id=item["id"], output_index=len(self.output) - 1, content_index=0,
                                     delta=text, **extra)]  # fmt: skip

    def _calls(self, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        events = self._close()
        for call in calls:
            function = call.get("function") or {}
            arguments = str(function.get("arguments") or "")
            item = {"type": "function_call", "id": _item_id("fc"), "call_id": call.get("id") or _item_id("call"),
                    "name": function.get("name") or "", "arguments": "", "status": "in_progress"}  # fmt: skip
            index, added = self._add(item)
            events += [
                added,
                self._event("response.function_call_arguments.delta", item_id=item["id"], output_index=index, delta=arguments),
                self._event("response.function_call_arguments.done", item_id=item["id"], output_index=index,
                            name=item["name"], arguments=arguments),  # fmt: skip
            ]
            item.update(arguments=arguments, status="completed")
            events.append(self._event("response.output_item.done", output_index=index, item=dict(item)))
        return events

    def event(self, event: Event) -> list[dict[str, Any]]:
        """The stream events one client event gives (none for usage and finish reason)."""
        if isinstance(event, str):
            return self._delta("message", event) if event else []
        if isinstance(event, Reasoning):
            return self._delta("reasoning", event.text) if event.text else []
        if isinstance(event, ToolCalls):
            return self._calls(list(event.calls))
        if isinstance(event, Usage):
            self.usage = event
        elif isinstance(event, FinishReason):
            self.finish_reason = event.reason
        return []

    def encode_batch(self, events: list[Event]) -> bytes:
        """The SSE bytes of events sent at once, each run of text (or reasoning) as one delta."""
        return b"".join(sse_event(item) for event in merged(events) for item in self.event(event))

    def finish(self) -> list[dict[str, Any]]:
        """Close the open item; ``response.completed`` (``response.incomplete`` when the token
        limit cut the answer)."""
        events = self._close()
        if not self.output:  # an empty answer is still one (empty) message
            events += self._begin("message") + self._close()
        self.status = "incomplete" if self.finish_reason == "length" else "completed"
        kind = "response.incomplete" if self.status == "incomplete" else "response.completed"
        return [*events, self._event(kind, response=self.response())]

    def fail(self, code: str | None, message: str) -> list[dict[str, Any]]:
        """``response.failed`` carrying the error; the items so far stay, marked incomplete."""
        if self._open is not None:
            self._open.update(content=[{"type": "output_text" if self._open["type"] == "message" else "reasoning_text",
                                        "text": "".join(self._parts)}], status="incomplete")  # fmt: skip
            self._open = None
        self.status = "failed"
        self.error = {"code": code or "server_error", "message": message}
        return [self._event("response.failed", response=self.response())]

    # -- the conversation it continues -----------------------------------------------------------
    def as_messages(self) -> list[dict[str, Any]]:
        """The output as chat messages (for a later ``previous_response_id``)."""
        text = self.output_text
        calls = [{"id": item["call_id"], "type": "function",
                  "function": {"name": item["name"], "arguments": item["arguments"]}}
                 for item in self.output if item["type"] == "function_call"]  # fmt: skip
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if calls:
            message["tool_calls"] = calls
        return [message] if text or calls else []
