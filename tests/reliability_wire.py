"""Real sockets for the stream tests: a local HTTP/1.1 server that sends a recorded response cut at
a byte offset of the wire and then closes, resets or falls silent; and an endless line source."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import struct
from collections.abc import Iterator
from typing import Any, Self

from curl_cffi.requests.models import STREAM_END
from reliability_streams import Recording

SKIPPED_HEADERS = {"transfer-encoding", "content-length", "connection", "content-encoding", "set-cookie"}


def wire(rec: Recording) -> tuple[bytes, list[int]]:
    """The response as sent on the wire (chunked, a chunk per line), and its chunk boundaries."""
    head = "HTTP/1.1 200 OK\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in rec.headers if name.lower() not in SKIPPED_HEADERS
    )
    data = (head + "Transfer-Encoding: chunked\r\n\r\n").encode()
    bounds = [len(data)]
    for line in rec.body.splitlines(keepends=True):
        data += b"%x\r\n%s\r\n" % (len(line), line)
        bounds.append(len(data))
    return data + b"0\r\n\r\n", bounds


def offsets(data: bytes, bounds: list[int]) -> list[int]:
    """A representative set of cuts: in the head, at every chunk boundary, inside every chunk
    (in its size line, just after it, in the middle, just before its CRLF) and the whole."""
    cuts = {0, bounds[0] // 2, bounds[0] - 1, len(data) - 3, len(data)}
    for start, end in itertools.pairwise(bounds):
        cuts |= {start, start + 2, start + 5, (start + end) // 2, end - 3}
    return sorted(cuts)


class CuttingServer:
    """``async with CuttingServer() as server``: answers each request with ``server.data[:cut]``,
    then ``ending`` ("close": FIN, "reset": RST, "silence": the socket stays open)."""

    def __init__(self) -> None:
        self.data, self.cut, self.ending = b"", 0, "close"
        self.sent: list[int] = []  # bytes written per connection (for the endless line)
        self.endless: bytes | None = None  # a chunk to send forever after the cut
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._answer(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            writer.transport.abort()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                       if line.startswith(b"content-length:")), 0)  # fmt: skip
        await reader.readexactly(length)
        writer.write(self.data[: self.cut])
        await writer.drain()
        sent = self.cut
        self.sent.append(sent)
        while self.endless is not None:  # until the client gives up
            writer.write(self.endless)
            await writer.drain()
            sent += len(self.endless)
            self.sent[-1] = sent
        if self.ending == "reset":
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif self.ending == "silence":
            await reader.read()  # until the client leaves
        elif self.ending == "close":
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


class Trickle:
    """The ``queue`` of a streamed curl_cffi response that makes ``head`` then ``total`` bytes of
    ``filler``, one 64 KiB piece per read, on demand (nothing is held in advance)."""

    def __init__(self, head: bytes, filler: bytes, total: int) -> None:
        self.pieces = self._pieces(head, filler, total)
        self.made = 0

    @staticmethod
    def _pieces(head: bytes, filler: bytes, total: int) -> Iterator[bytes]:
        yield head
        piece = filler * (65536 // len(filler))
        for _ in range(total // len(piece)):
            yield bytes(bytearray(piece))  # a new object each time, as from the network

    def empty(self) -> bool:
        return True  # each piece arrives on its own

    async def get(self) -> Any:
        piece = next(self.pieces, STREAM_END)
        if isinstance(piece, bytes):
            self.made += len(piece)
        return piece

    def get_nowait(self) -> Any:
        raise asyncio.QueueEmpty


def body_offset(data: bytes, bounds: list[int], cut: int) -> int:
    """How many bytes of the body the first ``cut`` bytes of the wire carry."""
    total = 0
    for start, end in itertools.pairwise(bounds):
        payload = data.index(b"\r\n", start) + 2
        total += max(0, min(cut, end - 2) - payload)
    return total
