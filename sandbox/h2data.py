"""The HTTP/2 front's body path: a chunked HTTP/1.1 body read back, and where DATA frames end.

h2server.py reads each stream's response head with `h11`; a chunked body, the streams' case,
then comes through `ChunkedBody`, which decodes the chunked coding aiohttp writes (RFC 9112 7.1:
a hex size line, the data, CRLF; a 0 size line and trailers to end it) into views of each write,
sent on as DATA frames without a copy when the window allows. It is hand-written because no
library fits the middle of a message: `h11`, the slow path it replaces, costs about 7 µs per
write in events and copies; llhttp (`httptools`) would be a new compiled dependency that must
parse the head too and cannot be told that a response answers a HEAD request.
"""
from __future__ import annotations

import random
import re
from collections.abc import Iterable

SIZE_LINE = re.compile(rb"([0-9A-Fa-f]{1,15})[ \t]*(?:;[^\r\n]*)?\r?")
LINE_LIMIT = 4096


class ChunkedBody:
    """A chunked body decoded as it comes, in pieces cut anywhere."""

    def __init__(self) -> None:
        self._line = b""  # a line not yet ended
        self._left = 0  # data bytes of the current chunk still to come
        self._after_data = False  # the CRLF after a chunk's data is next
        self._trailers = False  # past the last chunk: trailer lines until an empty one
        self.done = False

    def feed(self, data: bytes) -> list[memoryview]:
        """The body bytes in `data`, as views of it; ValueError if it is no chunked body."""
        body: list[memoryview] = []
        position, end = 0, len(data)
        view = memoryview(data)
        while position < end and not self.done:
            if self._left:
                take = min(self._left, end - position)
                body.append(view[position : position + take])
                position += take
                self._left -= take
                if not self._left and data.startswith(b"\r\n", position):  # the usual case
                    position += 2
                    self._after_data = False
                continue
            newline = data.find(b"\n", position)
            if newline < 0:
                self._line += data[position:]
                if len(self._line) > LINE_LIMIT:
                    raise ValueError("chunked body: a line too long")
                break
            line = self._line + data[position:newline] if self._line else data[position:newline]
            self._line, position = b"", newline + 1
            self._read_line(line)
        return body

    def _read_line(self, line: bytes) -> None:
        if self._after_data:
            if line not in (b"", b"\r"):
                raise ValueError("chunked body: no CRLF after a chunk's data")
            self._after_data = False
        elif self._trailers:
            self.done = line in (b"", b"\r")
        else:
            match = SIZE_LINE.fullmatch(line)
            if match is None:
                raise ValueError(f"chunked body: bad size line {line[:40]!r}")
            self._left = int(match.group(1), 16)
            self._after_data = self._left > 0
            self._trailers = self._left == 0


def chunked_body(method: bytes, status: int, headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether a body in the chunked coding follows this response head (answering `method`)."""
    codings = b",".join(value for name, value in headers if name.lower() == b"transfer-encoding")
    return method != b"HEAD" and status not in (204, 304) and b"chunked" in codings.lower()


def frame_ends(size: int, max_frame: int, rng: random.Random | None) -> list[int]:
    """Where the DATA frames that carry `size` bytes end, as offsets.

    Without `rng`, as few frames as `max_frame` allows. With it, as many frames, of random sizes
    (a write that needs two or more frames has its first end at a random place); a write that
    fits one frame is cut in two at a random place two times in three, so frames still end
    inside events when writes are small.
    """
    if rng is None:
        return [min(end, size) for end in range(max_frame, size + max_frame, max_frame)] or [size]
    count = -(-size // max_frame)
    if count <= 1:
        if size < 2 or rng.random() < 1 / 3:
            return [size]
        return [1 + int(rng.random() * (size - 1)), size]
    low = size - (count - 1) * max_frame
    first = low + int(rng.random() * (max_frame - low + 1))
    return [first, *(min(end, size) for end in range(first + max_frame, size + max_frame, max_frame))]
