"""Workers AI SSE (the playground's oldest generation, early 2025) -> events."""

from __future__ import annotations

from typing import Any

from harvestkit.client.events import Event, ToolCalls, Usage, normalize_tool_call
from harvestkit.client.parsers._common import (
    MAX_LINE,
    SHAPE_ERRORS,
    usage_from,
)
from harvestkit.client.parsers.sse import SSEStreamParser
from harvestkit.client.responses import error_from_body

__all__ = ["WorkersParser"]


class WorkersParser(SSEStreamParser):
    """Decodes ``data: {"response": "...", "p": ...}`` chunks, the final usage chunk and
    ``[DONE]``.

    Events: ``response`` -> ``str`` (empty skipped, repeats kept); ``tool_calls`` ->
    :class:`ToolCalls`; ``usage`` -> :class:`Usage`, once, at ``[DONE]`` or ``close()`` (the
    format has no finish reason); ``error``/``errors`` raise the matching error.  ``close()``
    raises :class:`StreamBroken` if neither the usage chunk nor ``[DONE]`` came.
    """

    def __init__(self, provider: str = "cloudflare", *, max_line: int = MAX_LINE) -> None:
        super().__init__(provider, max_line)
        self._usage: Usage | None = None
        self._done = False

    def _cut_is_harmless(self) -> bool:
        return self._usage is not None  # a cut after the final usage chunk loses nothing

    def _close(self, out: list[Event]) -> None:
        """Raise :class:`StreamBroken` if the stream ended before its last chunk."""
        self._flush(out)
        if not self._done and self._usage is None:
            raise self._broken("the stream ended before its final chunk")
        self._end(out)

    def _payload(self, payload: str, out: list[Event]) -> None:
        stripped = payload.strip()
        if self._done or not stripped:
            return
        if stripped == "[DONE]":
            self._end(out)
            return
        chunk = self._decode(payload, "Workers AI chunk")
        try:
            self._chunk(chunk, out)
        except SHAPE_ERRORS as exc:
            raise self._reraise(exc, "Workers AI chunk") from exc

    def _chunk(self, chunk: Any, out: list[Event]) -> None:
        if not isinstance(chunk, dict):
            raise self._protocol("a Workers AI chunk is not a JSON object")
        errors = chunk.get("errors")
        if chunk.get("error") or (errors and chunk.get("success") is False):
            error = chunk.get("error") or (errors[0] if isinstance(errors, list) else errors)
            raise error_from_body(None, error, self.provider, text=self.text_so_far)
        text = chunk.get("response")
        if text and isinstance(text, str):
            out.append(text)
            self._texts.append(text)
        if chunk.get("tool_calls"):
            out.append(ToolCalls([normalize_tool_call(c) for c in chunk["tool_calls"]]))
        usage = usage_from(chunk.get("usage"))
        if usage is not None:
            self._usage = usage

    def _end(self, out: list[Event]) -> None:
        if not self._done:
            self._done = True
            if self._usage is not None:
                out.append(self._usage)
