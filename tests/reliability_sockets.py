"""Raw sockets for abusing servers: send anything, hold connections open, reset them."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import time
from collections.abc import AsyncIterator

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def connect(port: int, data: bytes = b"") -> Conn:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if data:
        writer.write(data)
        await writer.drain()
    return reader, writer


def reset(writer: asyncio.StreamWriter) -> None:
    """Drop the connection with a TCP RST (no FIN, nothing flushed)."""
    with contextlib.suppress(OSError):
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def until_closed(reader: asyncio.StreamReader, timeout: float = 3.0) -> bytes:
    """Everything the server sends until it closes the connection (it must, within ``timeout``)."""
    async with asyncio.timeout(timeout):
        chunks = []
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                chunks.append(chunk)
        return b"".join(chunks)


async def exchange(port: int, data: bytes, timeout: float = 3.0) -> bytes:
    """Send ``data`` on a new connection; what came back before the server closed it."""
    reader, writer = await connect(port)
    with contextlib.suppress(ConnectionError):  # the server may answer and close mid-send
        writer.write(data)
        await writer.drain()
    try:
        return await until_closed(reader, timeout)
    finally:
        writer.transport.abort()


@contextlib.asynccontextmanager
async def held(port: int, count: int, data: bytes, then: bytes = b"") -> AsyncIterator[list[Conn]]:
    """``count`` connections that sent ``data`` (and, after the proxy's answer, ``then``) and
    wait; all are reset on leaving."""
    conns: list[Conn] = []
    try:
        for _ in range(count):
            reader, writer = await connect(port, data)
            conns.append((reader, writer))
            if then:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(then)
                await writer.drain()
        yield conns
    finally:
        for _, writer in conns:
            reset(writer)


async def first_event(reader: asyncio.StreamReader) -> bytes:
    """The first server-sent event of a streamed HTTP/1.1 answer (its head checked for a 200),
    wherever the writes and the chunked encoding cut it."""
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:300]
    chunked = b"transfer-encoding: chunked" in head.lower()
    body = b""
    while b"\n\n" not in body:
        if chunked:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            body += (await reader.readexactly(size + 2))[:-2]
        elif piece := await reader.read(65536):
            body += piece
        else:
            raise AssertionError(f"the answer ended before its first event: {body[:300]!r}")
    return body.split(b"\n\n", 1)[0]


async def all_closed(conns: list[Conn], timeout: float) -> float:
    """Seconds until the server closed every one of ``conns`` (TimeoutError past ``timeout``)."""
    started = time.monotonic()
    await asyncio.gather(*(until_closed(reader, timeout) for reader, _ in conns))
    return time.monotonic() - started


def client_hello(host: str) -> bytes:
    """A real TLS ClientHello for ``host`` (Python's, so not Chrome-like)."""
    context = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=host)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


async def tls_through_proxy(port: int, host: str, ca_bundle: str) -> Conn:
    """A TLS connection to ``host`` through the sandbox's proxy (CONNECT, then the handshake)."""
    reader, writer = await connect(port, f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
    await writer.start_tls(ssl.create_default_context(cafile=ca_bundle), server_hostname=host)
    return reader, writer
