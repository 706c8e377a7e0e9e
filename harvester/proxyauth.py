"""Authenticated proxies for the browser: a local forwarder that adds the credentials.

Chromium takes no credentials in `--proxy-server` (`http://user:pass@host` gives
`ERR_NO_SUPPORTED_PROXIES`), and a password there would show in `ps`. So for a proxy URL with a
user-info, the browser is pointed at a forwarder on 127.0.0.1 instead: each connection's request
head (a CONNECT, or a plain-HTTP request) goes to the real proxy with `Proxy-Authorization: Basic`
added, then bytes are relayed both ways. The password lives only in this process's memory: never on
a command line, in a log or an error (errors name the proxy through `redact_url`).

SOCKS proxies with a password are refused with a clear error: Chromium cannot use them, and the
forwarder speaks HTTP only.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import unquote, urlsplit

from harvestkit.cache.redact import redact_url

from .errors import SiteUnreachable

MAX_HEAD = 64 * 1024
IO_TIMEOUT = 30.0


def has_credentials(proxy: str | None) -> bool:
    return bool(proxy) and urlsplit(proxy).username is not None


class Forwarder:
    """A local HTTP proxy relaying to `upstream` with its credentials added."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        if parts.scheme not in ("http", ""):
            raise SiteUnreachable(
                f"the browser cannot use the {parts.scheme} proxy {redact_url(upstream)} with a password: "
                "Chromium supports credentials for HTTP proxies only (the client supports socks5 with a password)",
                site="proxy",
            )
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 8080
        credentials = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        self._header = b"Proxy-Authorization: Basic " + base64.b64encode(credentials.encode()) + b"\r\n"
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.url = ""

    async def start(self) -> str:
        """Listen on 127.0.0.1; the URL to give the browser."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, limit=MAX_HEAD)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    def _rewrite(self, head: bytes) -> bytes:
        """The request head with the credentials (replacing any) and, for plain HTTP, one request
        per connection (so that every request on it carries them)."""
        lines = head.split(b"\r\n")
        tunnel = lines[0].upper().startswith(b"CONNECT ")
        kept = [
            line for line in lines[1:]
            if line and not line.lower().startswith((b"proxy-authorization:", b"proxy-connection:"))
            and (tunnel or not line.lower().startswith(b"connection:"))
        ]  # fmt: skip
        extra = b"" if tunnel else b"Connection: close\r\n"
        return lines[0] + b"\r\n" + b"".join(line + b"\r\n" for line in kept) + self._header + extra + b"\r\n"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        upstream_writer = None
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IO_TIMEOUT)
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(self._host, self._port), IO_TIMEOUT
            )
            upstream_writer.write(self._rewrite(head[:-4]))
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            with contextlib.suppress(OSError):
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        finally:
            for stream in (writer, upstream_writer):
                if stream is not None:
                    stream.close()
            self._tasks.discard(task)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            if writer.can_write_eof():
                writer.write_eof()


@contextlib.asynccontextmanager
async def browser_proxy(proxy: str | None) -> AsyncIterator[str | None]:
    """The proxy URL to give the browser: `proxy` itself, or a local forwarder when it has credentials."""
    if not has_credentials(proxy):
        yield proxy
        return
    assert proxy is not None
    forwarder = Forwarder(proxy)
    try:
        yield await forwarder.start()
    finally:
        await forwarder.stop()
