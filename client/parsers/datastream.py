"""The AI SDK data stream v4 (Cloudflare playground, 2025): ``CODE:JSON`` lines -> events."""

from __future__ import annotations

from typing import Any

from harvestkit.client.errors import ProtocolError
from harvestkit.client.events import (
    Event,
    FinishReason,
    Reasoning,
    ToolCalls,
    normalize_tool_call,
)
from harvestkit.client.parsers._common import (
    MAX_LINE,
    SHAPE_ERRORS,
    StreamParser,
    TextBuffer,
    finish_reason,
    usage_from,
)
from harvestkit.client.responses import error_from_body

__all__ = ["DataStreamParser"]

# Besides 0 g 3 9 e d, codes whose value is only checked to be JSON: data (2), annotations (8),
# tool result (a), tool-call streaming start / delta (b, c: the full call follows as 9), start
# step (f), source (h), redacted reasoning (i) and its signature (j: opaque, not readable), file (k).
_KNOWN = frozenset("0g39ed28abcfhijk")


class DataStreamParser(StreamParser):
    """Decodes an AI SDK data stream (v4).

    Events: ``0:`` text -> ``str`` (empty skipped, repeats kept); ``g:`` -> :class:`Reasoning`;
    ``9:`` -> :class:`ToolCalls` with one call; ``3:`` raises the matching error (by default
    :class:`StreamBroken` with the text so far); ``d:`` (or, without it, the last ``e:``) ->
    :class:`Usage` then :class:`FinishReason`, once.  Unknown codes and lines are ignored; a
    known code with a malformed value raises :class:`ProtocolError`.  ``close()`` raises
    :class:`StreamBroken` if neither ``d:`` nor ``e:`` came.
    """

    def __init__(self, provider: str = "cloudflare", *, max_line: int = MAX_LINE) -> None:
        super().__init__(provider)
        self._lines = TextBuffer(max_line)
        self._step: dict[str, Any] | None = None  # the last finish-step value
        self._finished = False  # d: seen

    def _feed(self, data: bytes, out: list[Event]) -> None:
        text = self._lines.feed(data)
        if text:
            for line in text.split("\n"):
                if line:
                    self._line(line, out)

    def _close(self, out: list[Event]) -> None:
        """Raise :class:`StreamBroken` if the stream ended before its finish line."""
        tail = self._lines.close()
        if tail:
            try:
                self._line(tail, out)
            except ProtocolError as exc:
                # a cut finish message after a finish step loses nothing
                if not (tail.startswith("d:") and self._step is not None):
                    raise self._broken("the stream was cut in the middle of a line", exc) from None
        if not self._finished:
            if self._step is None:
                raise self._broken("the stream ended before its finish message")
            self._finish(self._step, out)

    def _line(self, line: str, out: list[Event]) -> None:
        code, sep, raw = line.partition(":")
        if self._finished or not sep or code not in _KNOWN:
            return
        value = self._decode(raw, f"data-stream line {code!r}")
        try:
            self._value(code, value, out)
        except SHAPE_ERRORS as exc:
            raise self._reraise(exc, f"data-stream line {code!r}") from exc

    def _value(self, code: str, value: Any, out: list[Event]) -> None:
        if code == "0":
            if not isinstance(value, str):
                raise self._protocol("a data-stream text line does not hold a string")
            if value:
                out.append(value)
                self._texts.append(value)
        elif code == "g":
            if not isinstance(value, str):
                raise self._protocol("a data-stream reasoning line does not hold a string")
            if value:
                out.append(Reasoning(value))
        elif code == "3":
            raise error_from_body(None, value, self.provider, text=self.text_so_far)
        elif code == "9":
            if not isinstance(value, dict):
                raise self._protocol("a data-stream tool call is not an object")
            out.append(ToolCalls([normalize_tool_call(value)]))
        elif code == "e":
            if not isinstance(value, dict):
                raise self._protocol("a data-stream finish step is not an object")
            self._step = value
        elif code == "d":
            if not isinstance(value, dict):
                raise self._protocol("a data-stream finish message is not an object")
            self._finish(value, out)

    def _finish(self, value: dict[str, Any], out: list[Event]) -> None:
        self._finished = True
        usage = usage_from(value.get("usage"))
        if usage is not None:
            out.append(usage)
        if value.get("finishReason"):
            out.append(FinishReason(finish_reason(value["finishReason"])))
