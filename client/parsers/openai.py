"""OpenAI-compatible chat completions (Cerebras): SSE ``chat.completion.chunk`` and the
non-streaming ``chat.completion`` body -> events."""

from __future__ import annotations

import re
from collections.abc import Mapping
from json.decoder import scanstring as _scanstring
from typing import Any

from harvestkit.client.errors import ServerError
from harvestkit.client.events import (
    Event,
    FinishReason,
    Reasoning,
    ToolCalls,
    Usage,
    normalize_tool_call,
)
from harvestkit.client.parsers._common import (
    MAX_LINE,
    SHAPE_ERRORS,
    json_body,
    usage_from,
)
from harvestkit.client.parsers.sse import SSEStreamParser
from harvestkit.client.responses import error_from_body

__all__ = ["OpenAIStreamParser", "parse_completion"]

_TEXT_KEYS = ("content", "reasoning", "reasoning_content")
_TEXT_KEY = re.compile(r'"(content|reasoning|reasoning_content)"\s*:\s*"')
_LEARN_BUDGET = 4  # slow chunks in a row after which templates are learned only rarely


class OpenAIStreamParser(SSEStreamParser):
    """Decodes an OpenAI / Cerebras chat completion SSE stream.

    Events: ``delta.content`` -> ``str`` (empty strings skipped, repeats kept);
    ``delta.reasoning`` / ``reasoning_content`` -> :class:`Reasoning`; tool calls (whole, as
    Cerebras sends them, or fragmented by ``index``) -> one :class:`ToolCalls` when
    ``finish_reason`` arrives; then :class:`Usage` (with ``time_info``) and
    :class:`FinishReason`, once, as soon as both are known, else at ``[DONE]`` / ``close()``.
    An ``error`` chunk raises the matching error.  ``[DONE]`` is optional (Cerebras sends none);
    ``close()`` raises :class:`StreamBroken` if neither a ``finish_reason`` nor ``[DONE]`` came.
    Chunks after the end (``[DONE]``, or finish reason and usage) are ignored.

    Fast path: a chunk whose bytes equal an earlier text-only chunk's outside the text string
    (same id, model, created...) is decoded without JSON parsing; if the envelope keeps
    changing, such templates are learned only now and then.
    """

    def __init__(self, provider: str = "cerebras", *, max_line: int = MAX_LINE) -> None:
        super().__init__(provider, max_line)
        # (prefix, suffix, min length, is reasoning) of text-only chunks seen
        self._templates: list[tuple[str, str, int, bool]] = []
        self._tools: dict[Any, dict[str, Any]] = {}
        self._finish: str | None = None
        self._usage: Usage | None = None
        self._learn_budget = _LEARN_BUDGET  # decremented by slow chunks, reset by fast ones
        self._done = False  # [DONE] seen
        self._ended = False  # Usage / FinishReason emitted

    def _feed(self, data: bytes, out: list[Event]) -> None:
        texts = self._texts
        hit = False
        for payload in self._sse.feed(data):
            for prefix, suffix, size, reasoning in self._templates:
                if len(payload) >= size and payload.startswith(prefix) and payload.endswith(suffix):
                    stop = len(payload) - len(suffix)
                    text = payload[len(prefix) : stop]
                    if "\\" in text:  # escapes: decode the string literal, check where it ends
                        try:
                            text, end = _scanstring(payload, len(prefix), False)
                        except ValueError:
                            continue
                        if end != stop + 1:
                            continue
                    elif '"' in text:
                        continue
                    if text:
                        if reasoning:
                            out.append(Reasoning(text))
                        else:
                            out.append(text)
                            texts.append(text)
                    hit = True
                    break
            else:
                self._payload(payload, out)
        if hit:
            self._learn_budget = _LEARN_BUDGET

    def _close(self, out: list[Event]) -> None:
        """Raise :class:`StreamBroken` if the stream ended before its final chunk."""
        self._flush(out)
        if not self._ended:
            if self._finish is None and not self._done:
                raise self._broken("the stream ended before its final chunk")
            self._end(out)

    def _cut_is_harmless(self) -> bool:
        return self._finish is not None  # a cut after the finish reason loses nothing

    def handle_chunk(self, chunk: Any) -> list[Event]:
        """The events of one decoded chunk (or of a ``chat.completion`` body)."""
        out: list[Event] = []
        self._handle(chunk, out)
        return out

    def _payload(self, payload: str, out: list[Event]) -> None:
        if self._ended or self._done:
            return
        if payload[:1] != "{":
            stripped = payload.strip()
            if stripped == "[DONE]":
                self._done = True
                self._end(out)
                return
            if not stripped:
                return
        chunk = self._decode(payload, "stream chunk")
        before = len(out)
        self._handle(chunk, out)
        if len(out) - before <= 1:  # maybe a text-only chunk: learn it as a template
            self._learn_budget -= 1  # unless many in a row failed: then only every 64th
            if self._learn_budget >= 0 or self._learn_budget % 64 == 0:
                self._learn(payload, chunk)

    def _handle(self, chunk: Any, out: list[Event]) -> None:
        try:
            self._chunk(chunk, out)
        except SHAPE_ERRORS as exc:
            raise self._reraise(exc, "chunk") from exc

    def _chunk(self, chunk: Any, out: list[Event]) -> None:
        if not isinstance(chunk, dict):
            raise self._protocol("a stream chunk is not a JSON object")
        if chunk.get("error") is not None:
            raise error_from_body(None, chunk, self.provider, text=self.text_so_far)
        for choice in chunk.get("choices") or ():
            if choice.get("index"):  # only the first choice (n > 1 is not supported)
                continue
            delta = choice.get("delta") or choice.get("message")
            if delta:
                reasoning = delta.get("reasoning") or delta.get("reasoning_content")
                if reasoning and isinstance(reasoning, str):
                    out.append(Reasoning(reasoning))
                content = delta.get("content")
                if content and isinstance(content, str):
                    out.append(content)
                    self._texts.append(content)
                if delta.get("tool_calls"):
                    self._add_tools(delta["tool_calls"])
            if choice.get("finish_reason"):
                self._finish = str(choice["finish_reason"])
                self._flush_tools(out)
        if chunk.get("usage"):
            usage = usage_from(chunk["usage"], chunk.get("time_info"))
            if usage is not None:
                self._usage = usage
        if self._finish is not None and self._usage is not None:
            self._end(out)

    def _add_tools(self, calls: Any) -> None:
        for call in calls:
            key = call.get("index")
            if key is None:
                key = call.get("id") or len(self._tools)
            slot = self._tools.get(key)
            if slot is None:
                self._tools[key] = normalize_tool_call(call)
                continue
            if call.get("id"):
                slot["id"] = str(call["id"])
            function = call.get("function") or {}
            if function.get("name"):
                slot["function"]["name"] = str(function["name"])
            if isinstance(function.get("arguments"), str):
                slot["function"]["arguments"] += function["arguments"]

    def _flush_tools(self, out: list[Event]) -> None:
        if self._tools:
            out.append(ToolCalls(list(self._tools.values())))
            self._tools = {}

    def _end(self, out: list[Event]) -> None:
        if self._ended:
            return
        self._ended = True
        self._templates = []  # nothing after the end counts: no fast path either
        self._flush_tools(out)
        if self._usage is not None:
            out.append(self._usage)
        if self._finish is not None:
            out.append(FinishReason(self._finish))

    def _learn(self, payload: str, chunk: Any) -> None:
        """Remember ``payload`` as a template if only one text field of it matters."""
        if chunk.get("usage") is not None or len(chunk.get("choices") or ()) != 1:
            return
        choice = chunk["choices"][0]
        delta = choice.get("delta")
        if (
            not isinstance(delta, dict)
            or choice.get("finish_reason") is not None
            or choice.get("index")
            or delta.get("tool_calls") is not None
        ):
            return
        keys = [k for k in _TEXT_KEYS if delta.get(k) is not None]
        if len(keys) != 1 or not isinstance(delta[keys[0]], str):
            return
        found = [m for m in _TEXT_KEY.finditer(payload) if m.group(1) == keys[0]]
        if len(found) != 1:
            return
        start = found[0].end()
        end = payload.find('"', start)
        if end < 0 or payload[start:end] != delta[keys[0]]:
            return
        template = (
            payload[:start],
            payload[end:],
            len(payload) - (end - start),
            keys[0] != "content",
        )
        self._templates = [template] + [t for t in self._templates if t[3] != template[3]]


def parse_completion(
    body: bytes | str | Mapping[str, Any], provider: str = "cerebras"
) -> list[Event]:
    """The events of a non-streaming ``chat.completion`` body, in stream order:
    :class:`Reasoning`, text, :class:`ToolCalls`, :class:`Usage`, :class:`FinishReason`."""
    data = json_body(body, provider, "chat completion")
    if isinstance(data, Mapping):
        data = dict(data)
        if data.get("error") is not None:
            raise error_from_body(None, data, provider, default=ServerError)
    parser = OpenAIStreamParser(provider)
    events = parser.handle_chunk(data)
    out: list[Event] = []
    parser._end(out)
    return events + out
