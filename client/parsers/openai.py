"""OpenAI-compatible chat completions (Cerebras): SSE ``chat.completion.chunk`` and the
non-streaming ``chat.completion`` body -> events."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

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
from harvestkit.client.parsers.records import ChunkShapeError, OpenAIChunk, TextChunk, decode, decoder
from harvestkit.client.parsers.sse import SSEStreamParser
from harvestkit.client.responses import error_from_body

__all__ = ["OpenAIStreamParser", "parse_completion"]

_CHUNK = decoder(OpenAIChunk)
_DECODE_TEXT = decoder(TextChunk).decode


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

    Each chunk is decoded into a :class:`~harvestkit.client.parsers.records.TextChunk` (text and
    nothing else to read), or if that fails into an :class:`~harvestkit.client.parsers.records.OpenAIChunk`;
    both skip every field the client does not read: envelopes that change from chunk to chunk
    (padding, token ids, reordered keys) cost what identical ones cost.
    """

    def __init__(self, provider: str = "cerebras", *, max_line: int = MAX_LINE) -> None:
        super().__init__(provider, max_line)
        self._tools: dict[Any, dict[str, Any]] = {}
        self._finish: str | None = None
        self._usage: Usage | None = None
        self._done = False  # [DONE] seen
        self._ended = False  # Usage / FinishReason emitted

    def _feed(self, data: bytes, out: list[Event]) -> None:
        payloads = self._sse.feed(data)
        if self._ended or self._done:
            return
        decode, texts = _DECODE_TEXT, self._texts
        for payload in payloads:
            try:
                content = decode(payload).choices[0].delta.content  # the usual chunk: only text
            except (msgspec.DecodeError, RecursionError):  # any other chunk, [DONE], bad JSON
                self._payload(payload, out)
                if self._ended or self._done:  # chunks after the end are ignored
                    return
            else:
                if content:
                    out.append(content)
                    texts.append(content)

    def _close(self, out: list[Event]) -> None:
        """Raise :class:`StreamBroken` if the stream ended before its final chunk."""
        self._flush(out)
        if not self._ended:
            if self._finish is None and not self._done:
                raise self._broken("the stream ended before its final chunk")
            self._end(out)

    def _cut_is_harmless(self) -> bool:
        return self._finish is not None  # a cut after the finish reason loses nothing

    def handle_chunk(self, chunk: Mapping[str, Any]) -> list[Event]:
        """The events of one chunk already decoded to a mapping (or of a ``chat.completion``)."""
        out: list[Event] = []
        if not isinstance(chunk, Mapping):
            raise self._protocol("a stream chunk is not a JSON object")
        if chunk.get("error") is not None:
            raise error_from_body(None, dict(chunk), self.provider, text=self.text_so_far)
        try:
            record = msgspec.convert(dict(chunk), OpenAIChunk)
        except msgspec.ValidationError as exc:
            raise self._protocol("unexpected shape of a chunk", exc) from None
        self._handle(record, out)
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
        try:
            chunk = decode(payload, _CHUNK)
        except ChunkShapeError as exc:
            value = exc.value
            if isinstance(value, dict) and value.get("error") is not None:
                raise error_from_body(None, value, self.provider, text=self.text_so_far) from None
            if not isinstance(value, dict):
                raise self._protocol("a stream chunk is not a JSON object") from None
            raise self._protocol("unexpected shape of a chunk", exc) from None
        except ValueError as exc:
            raise self._protocol("malformed JSON in a stream chunk", exc) from None
        self._record(payload, chunk, out)

    def _record(self, payload: str, chunk: OpenAIChunk, out: list[Event]) -> None:
        if chunk.error is not None:
            raise error_from_body(None, self._decode(payload, "stream chunk"), self.provider, text=self.text_so_far)
        self._handle(chunk, out)

    def _handle(self, chunk: OpenAIChunk, out: list[Event]) -> None:
        try:
            self._chunk(chunk, out)
        except SHAPE_ERRORS as exc:
            raise self._reraise(exc, "chunk") from exc

    def _chunk(self, chunk: OpenAIChunk, out: list[Event]) -> None:
        for choice in chunk.choices or ():
            if choice.index:  # only the first choice (n > 1 is not supported)
                continue
            delta = choice.delta or choice.message
            if delta is not None:
                content = delta.content
                reasoning = delta.reasoning or delta.reasoning_content
                if reasoning and isinstance(reasoning, str):
                    out.append(Reasoning(reasoning))
                if content and isinstance(content, str):
                    out.append(content)
                    self._texts.append(content)
                if delta.tool_calls:
                    self._add_tools(delta.tool_calls)
            if choice.finish_reason:
                self._finish = str(choice.finish_reason)
                self._flush_tools(out)
        if chunk.usage:
            usage = usage_from(chunk.usage, chunk.time_info)
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
        self._flush_tools(out)
        if self._usage is not None:
            out.append(self._usage)
        if self._finish is not None:
            out.append(FinishReason(self._finish))


def parse_completion(
    body: bytes | str | Mapping[str, Any], provider: str = "cerebras"
) -> list[Event]:
    """The events of a non-streaming ``chat.completion`` body, in stream order:
    :class:`Reasoning`, text, :class:`ToolCalls`, :class:`Usage`, :class:`FinishReason`."""
    data = json_body(body, provider, "chat completion")
    if isinstance(data, Mapping) and data.get("error") is not None:
        raise error_from_body(None, dict(data), provider, default=ServerError)
    parser = OpenAIStreamParser(provider)
    events = parser.handle_chunk(data)
    out: list[Event] = []
    parser._end(out)
    return events + out
