"""Server-sent events: bytes in arbitrary splits -> the data payload of each event."""

from __future__ import annotations

from harvestkit.client.errors import ProtocolError
from harvestkit.client.events import Event
from harvestkit.client.parsers._common import MAX_LINE, StreamParser, TextBuffer

__all__ = ["SSEDecoder", "SSEStreamParser"]


class SSEDecoder:
    """Incremental SSE decoder following the WHATWG parsing rules.

    ``feed(bytes)`` returns the data payloads of the events it completes, in order.  ``data:``
    with or without the space, LF / CRLF / CR line endings, ``:`` comments and multi-line data
    (joined with ``"\\n"``) are handled; ``event``, ``id``, ``retry`` and unknown fields are
    ignored; events without data yield nothing.  A line, or an event's data, longer than
    ``max_line`` bytes raises :class:`ProtocolError`.
    """

    __slots__ = ("_data", "_max", "_size", "_text")

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._text = TextBuffer(max_line)
        self._max = max_line
        self._data: list[str] = []  # data lines of the event being read
        self._size = 0

    def feed(self, data: bytes) -> list[str]:
        """Add ``data``; return the payloads of the events it completes."""
        text = self._text.feed(data)
        if not text:
            return []
        out: list[str] = []
        if self._data and text[0] == "\n":  # the blank line of the event read last time
            self._dispatch(out)
            text = text[1:]
        end = text.rfind("\n\n")
        if end > 0 and not self._data and text[:6] == "data: ":
            # the usual shape, one "data: ..." line per event: cut all of them in one split
            parts = text[6:end].split("\n\ndata: ")
            if "\n" not in "".join(parts):  # no other line in these events (a copy and a memchr
                # cost less than counting the line breaks)
                rest = text[end + 2 :]
                if rest:
                    self._lines(rest[:-1].split("\n"), parts)
                return out + parts if out else parts
        blocks = text.split("\n\n")
        last = blocks.pop()  # complete lines of an event whose blank line is still to come
        for block in blocks:
            self._lines(block.split("\n"), out)
            self._dispatch(out)
        if last:
            self._lines(last[:-1].split("\n"), out)
        return out

    def close(self) -> list[str]:
        """End of stream: return the payload of a last event that lacked its blank line."""
        out: list[str] = []
        tail = self._text.close()
        if tail:
            self._lines([tail], out)
        self._dispatch(out)
        return out

    def _lines(self, lines: list[str], out: list[str]) -> None:
        for line in lines:
            if not line:
                self._dispatch(out)
            elif line[0] != ":":
                name, _, value = line.partition(":")
                if name == "data":
                    if value[:1] == " ":
                        value = value[1:]
                    self._data.append(value)
                    self._size += len(value) + 1
                    if self._size > self._max:
                        raise ProtocolError(f"an event's data exceeds the {self._max}-byte limit")

    def _dispatch(self, out: list[str]) -> None:
        if self._data:
            out.append("\n".join(self._data))
            self._data = []
            self._size = 0


class SSEStreamParser(StreamParser):
    """A stream parser whose wire is SSE: each event's data payload goes to ``_payload``."""

    def __init__(self, provider: str, max_line: int = MAX_LINE) -> None:
        super().__init__(provider)
        self._sse = SSEDecoder(max_line)

    def _feed(self, data: bytes, out: list[Event]) -> None:
        for payload in self._sse.feed(data):
            self._payload(payload, out)

    def _flush(self, out: list[Event]) -> None:
        """The events of what is left at the end. A last event cut mid-way (no blank line)
        raises :class:`StreamBroken`, unless :meth:`_cut_is_harmless` says the answer was
        already complete."""
        try:
            for payload in self._sse.close():
                self._payload(payload, out)
        except ProtocolError as exc:
            if not self._cut_is_harmless():
                raise self._broken("the stream was cut in the middle of a chunk", exc) from None

    def _cut_is_harmless(self) -> bool:
        return False

    def _payload(self, payload: str, out: list[Event]) -> None:
        raise NotImplementedError

