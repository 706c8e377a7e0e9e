"""Pieces shared by the stream parsers: line cutting, JSON, usage, the parser base class."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from harvestkit.client.errors import (
    ChallengeError,
    ClientError,
    ProtocolError,
    StreamBroken,
)
from harvestkit.client.events import Event, Usage
from harvestkit.client.responses import html_summary, is_challenge_page

MAX_LINE = 1 << 20
"""Default bound (bytes) of one line, and of one SSE event's data."""

_decoder = json.JSONDecoder(strict=False)


def loads(text: str) -> Any:
    """``json.loads`` for ``str`` that tolerates raw control characters inside strings and
    reports too-deep nesting as a ``ValueError`` too."""
    try:
        return _decoder.decode(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


SHAPE_ERRORS = (TypeError, AttributeError, KeyError, IndexError, ValueError, RecursionError)
"""What handling a well-formed JSON value of an unexpected shape can raise."""


class TextBuffer:
    """Cuts a byte stream into decoded text ending at a line break.

    LF, CRLF and lone CR all become ``"\\n"`` (a CRLF split across two feeds included); a UTF-8
    BOM at the start is dropped; invalid UTF-8 becomes U+FFFD.  A line longer than ``max_line``
    bytes raises :class:`ProtocolError` instead of being buffered.
    """

    __slots__ = ("_held_cr", "_max", "_parts", "_size", "_started")

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._max = max_line
        self._parts: list[bytes] = []  # the unterminated last line, in pieces
        self._size = 0
        self._held_cr = False  # the data so far ends with CR: maybe half of a CRLF
        self._started = False

    def _too_long(self) -> ProtocolError:
        return ProtocolError(f"a line exceeds the {self._max}-byte limit")

    def feed(self, data: bytes) -> str:
        """Add ``data``; return the text of all lines it completes (``""`` or ends with ``\\n``)."""
        if not self._held_cr and b"\n" not in data and b"\r" not in data:
            if data:
                self._parts.append(data)
                self._size += len(data)
                if self._size > self._max:
                    raise self._too_long()
            return ""
        if self._parts:
            self._parts.append(data)
            buf = b"".join(self._parts)
        else:
            buf = data
        if b"\r" in buf:
            self._held_cr = buf.endswith(b"\r")
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if self._held_cr:  # the trailing LF stands for the CR: keep it back
                buf = buf[:-1]
        cut = buf.rfind(b"\n") + 1
        tail = buf[cut:] + b"\r" if self._held_cr else buf[cut:]
        self._parts = [tail] if tail else []
        self._size = len(tail)
        if self._size > self._max or (
            cut > self._max and max(map(len, buf[:cut].split(b"\n"))) > self._max
        ):
            raise self._too_long()
        return self._text(buf[:cut])

    def close(self) -> str:
        """The unterminated last line (without a line break), ``""`` if none."""
        tail = b"".join(self._parts)
        self._parts, self._size, self._held_cr = [], 0, False
        return self._text(tail[:-1] if tail.endswith(b"\r") else tail)

    def _text(self, raw: bytes) -> str:
        text = raw.decode("utf-8", "replace")
        if not self._started and text:
            self._started = True
            if text[0] == "\ufeff":
                return text[1:]
        return text


def to_int(value: Any) -> int:
    """A token count as an ``int`` (``None``, NaN and junk count as 0)."""
    try:
        return int(value) if not isinstance(value, bool) else 0
    except (TypeError, ValueError, OverflowError):
        return 0


def finish_reason(value: Any) -> str:
    """A finish reason in OpenAI's spelling: the AI SDK's ``tool-calls`` is ``tool_calls``."""
    return str(value).replace("-", "_")


_PROMPT = ("prompt_tokens", "promptTokens", "inputTokens", "input_tokens")
_COMPLETION = ("completion_tokens", "completionTokens", "outputTokens", "output_tokens")
_TOTAL = ("total_tokens", "totalTokens")


def usage_from(data: Any, time_info: Any = None) -> Usage | None:
    """A :class:`Usage` from any of the usual spellings of token counts, else ``None``."""
    if not isinstance(data, Mapping):
        return None
    prompt = next((data[k] for k in _PROMPT if data.get(k) is not None), None)
    completion = next((data[k] for k in _COMPLETION if data.get(k) is not None), None)
    total = next((data[k] for k in _TOTAL if data.get(k) is not None), None)
    if prompt is None and completion is None and total is None:
        return None
    prompt, completion = to_int(prompt), to_int(completion)
    total = to_int(total) if total is not None else prompt + completion
    if not isinstance(time_info, dict):
        time_info = data.get("time_info") if isinstance(data.get("time_info"), dict) else None
    return Usage(prompt, completion, total, time_info)


def json_body(body: bytes | str | Any, provider: str, what: str) -> Any:
    """Decode a JSON response body; an HTML page or junk gives a clear harvestkit error."""
    if not isinstance(body, (bytes, bytearray, str)):
        return body
    text = body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else body
    if is_challenge_page(text):
        raise ChallengeError("blocked by a Cloudflare challenge page", provider=provider)
    html = html_summary(text)
    if html is not None:
        raise ProtocolError(f"expected JSON {what} but got {html}", provider=provider)
    try:
        return loads(text.strip().lstrip("\ufeff"))
    except ValueError as exc:
        raise ProtocolError(f"{what} is not valid JSON", provider=provider, cause=exc) from None


class StreamParser:
    """Incremental decoder of one response stream.

    ``feed(data)`` returns the events the data completes; ``close()`` returns the last events
    and raises :class:`StreamBroken` if the stream ended before its terminal marker.  Errors
    carry ``text_so_far``: the answer text emitted so far.
    """

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self._texts: list[str] = []
        self._error: ClientError | None = None

    @property
    def text_so_far(self) -> str:
        """The answer text (not reasoning) emitted so far."""
        return "".join(self._texts)

    def feed(self, data: bytes) -> list[Event]:
        """Decode ``data`` (any split of the stream); return the events it completes.

        When ``data`` holds events and then an error, the events are returned and the error is
        raised by the next ``feed`` or ``close``: nothing that arrived is lost."""
        if self._error is not None:
            raise self._error
        out: list[Event] = []
        try:
            self._feed(data, out)
        except ClientError as error:
            if not out:
                raise
            self._error = error
        return out

    def close(self) -> list[Event]:
        """Flush at the end of the stream; raise :class:`StreamBroken` if it was cut short."""
        if self._error is not None:
            raise self._error
        out: list[Event] = []
        self._close(out)
        return out

    def finish(self) -> Iterator[Event]:
        """:meth:`close` for a consumer that passes events on: the last events are yielded even
        when the stream was cut short, and only then is :class:`StreamBroken` raised, so the
        caller has received exactly the text the error carries."""
        if self._error is not None:
            raise self._error
        out: list[Event] = []
        try:
            self._close(out)
        except ClientError as error:
            yield from out
            raise error  # noqa: TRY201 - explicit: raised after yields
        yield from out

    def _feed(self, data: bytes, out: list[Event]) -> None:
        raise NotImplementedError

    def _close(self, out: list[Event]) -> None:
        raise NotImplementedError

    def _broken(self, message: str, cause: BaseException | None = None) -> StreamBroken:
        return StreamBroken(message, text=self.text_so_far, cause=cause, provider=self.provider)

    def _protocol(self, message: str, cause: BaseException | None = None) -> ProtocolError:
        return ProtocolError(message, text=self.text_so_far, cause=cause, provider=self.provider)

    def _decode(self, payload: str, what: str) -> Any:
        try:
            return loads(payload)
        except ValueError as exc:
            raise self._protocol(f"malformed JSON in a {what}", exc) from None

    def _reraise(self, exc: BaseException, what: str) -> ClientError:
        """The error to raise when handling a chunk failed with ``exc``."""
        if isinstance(exc, ClientError):
            return exc
        return self._protocol(f"unexpected shape of a {what}", exc)
