"""The AI SDK UI message stream (Cloudflare playground, late 2025): SSE JSON chunks -> events."""

from __future__ import annotations

from typing import Any

import msgspec

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
    finish_reason,
    usage_from,
)
from harvestkit.client.parsers.records import ChunkShapeError, UIChunk, decode, decoder
from harvestkit.client.parsers.sse import SSEStreamParser
from harvestkit.client.responses import error_from_body

__all__ = ["UIStreamParser"]

_CHUNK = decoder(UIChunk)
_DECODE = _CHUNK.decode
_TEXT, _REASONING = "text-delta", frozenset({"reasoning-delta", "reasoning"})
_WHOLE = frozenset({"tool-input-available", "error", "message-metadata", "finish"})


class UIStreamParser(SSEStreamParser):
    """Decodes a UI message stream (SSE ``data: {"type": ...}`` chunks, then ``[DONE]``).

    Events: ``text-delta`` -> ``str`` (empty skipped, repeats kept); ``reasoning-delta`` ->
    :class:`Reasoning`; ``tool-input-available`` -> :class:`ToolCalls` with one call;
    ``finish`` -> :class:`Usage` (from ``usage`` or ``messageMetadata``, also of an earlier
    ``message-metadata`` chunk) then :class:`FinishReason`, when given, once; ``error`` raises
    the matching error (by default :class:`StreamBroken` with the text so far).  Other types
    (start, *-start, *-end, steps, tool output, sources, data-*) are ignored.  ``close()`` raises
    :class:`StreamBroken` if neither ``finish`` nor ``[DONE]`` came.
    """

    def __init__(self, provider: str = "cloudflare", *, max_line: int = MAX_LINE) -> None:
        super().__init__(provider, max_line)
        self._usage: Usage | None = None
        self._reason: str | None = None
        self._finished = False

    def _close(self, out: list[Event]) -> None:
        """Raise :class:`StreamBroken` if the stream ended before ``finish``/``[DONE]``."""
        self._flush(out)
        if not self._finished:
            raise self._broken("the stream ended before its finish chunk")

    def handle_chunk(self, chunk: Any) -> list[Event]:
        """The events of one decoded UI-message chunk (a ``{"type": ...}`` object)."""
        out: list[Event] = []
        if self._finished:
            return out
        if not isinstance(chunk, dict):
            raise self._protocol("a UI-message chunk is not a JSON object")
        try:
            self._chunk(chunk, out)
        except SHAPE_ERRORS as exc:
            raise self._reraise(exc, "UI-message chunk") from exc
        return out

    def _payload(self, payload: str, out: list[Event]) -> None:
        if self._finished:
            return
        try:
            chunk = _DECODE(payload)
        except (msgspec.DecodeError, RecursionError):  # [DONE], blank, lenient JSON, other shapes
            found = self._lenient(payload, out)
            if found is None:
                return
            chunk = found
        kind = chunk.type
        if kind == _TEXT:  # the hot path: only the record's fields were read
            text = chunk.delta if chunk.delta is not None else chunk.textDelta
            if text and isinstance(text, str):
                out.append(text)
                self._texts.append(text)
        elif not isinstance(kind, str):
            return  # not a type of ours
        elif kind in _REASONING:
            text = chunk.delta if chunk.delta is not None else chunk.text
            if text and isinstance(text, str):
                out.append(Reasoning(text))
        elif kind in _WHOLE:  # rare types are read whole
            out += self.handle_chunk(self._decode(payload, "UI-message chunk"))

    def _lenient(self, payload: str, out: list[Event]) -> UIChunk | None:
        """The chunk of a payload msgspec refused, or None once its events are in ``out``."""
        stripped = payload.strip()
        if stripped == "[DONE]":
            self._end(out)
            return None
        if not stripped:
            return None
        try:
            return decode(payload, _CHUNK)
        except ChunkShapeError as exc:  # not an object: a clear error from the plain reading
            out += self.handle_chunk(exc.value)
            return None
        except ValueError as exc:
            raise self._protocol("malformed JSON in a UI-message chunk", exc) from None

    def _chunk(self, chunk: dict[str, Any], out: list[Event]) -> None:
        # text-delta and reasoning-delta also come here from handle_chunk (already decoded)
        kind = chunk.get("type")
        if kind == "text-delta":
            text = chunk.get("delta", chunk.get("textDelta"))
            if text and isinstance(text, str):
                out.append(text)
                self._texts.append(text)
        elif kind in ("reasoning-delta", "reasoning"):
            text = chunk.get("delta", chunk.get("text"))
            if text and isinstance(text, str):
                out.append(Reasoning(text))
        elif kind == "tool-input-available":
            out.append(ToolCalls([normalize_tool_call(chunk)]))
        elif kind == "error":
            body = {k: v for k, v in chunk.items() if k != "type"}
            raise error_from_body(None, body, self.provider, text=self.text_so_far)
        elif kind in ("message-metadata", "finish"):
            self._metadata(chunk)
            if kind == "finish":
                self._end(out)

    def _metadata(self, chunk: dict[str, Any]) -> None:
        meta = chunk.get("messageMetadata")
        meta = meta if isinstance(meta, dict) else {}
        for source in (chunk.get("usage"), meta.get("usage"), meta):
            usage = usage_from(source)
            if usage is not None:
                self._usage = usage
                break
        reason = chunk.get("finishReason") or meta.get("finishReason")
        if reason:
            self._reason = finish_reason(reason)

    def _end(self, out: list[Event]) -> None:
        if self._finished:
            return
        self._finished = True
        if self._usage is not None:
            out.append(self._usage)
        if self._reason is not None:
            out.append(FinishReason(self._reason))
