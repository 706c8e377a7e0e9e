"""The forward proxy: CONNECT to the sandboxed hosts only, TLS served in-process, nothing else.

A CONNECT to one of the replica hosts is answered, the client's ClientHello is read (peeked, not
consumed) and classified, and the socket is handed to the TLS replica server. Every other host is
refused with 403 and logged: nothing ever leaves loopback. Origin-form requests (`GET /__sandbox/...`)
are the control API (see control.py). With `auth` (user, password), every proxy request (CONNECT or
absolute-form) needs those credentials in `Proxy-Authorization: Basic`, else it gets a 407 (the
control API stays open, as it is not proxying).
"""
from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from .clienthello import NotClientHello, needed_bytes, parse_client_hello
from .state import SandboxState

log = logging.getLogger("harvestkit.sandbox")
MAX_HEAD = 64 * 1024
MAX_BODY = 1024 * 1024
IO_TIMEOUT = 10.0

ControlHandler = Callable[[str, str, bytes], Awaitable[tuple[int, Any]]]


_PROXY_AUTH_REQUIRED = (
    b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"harvestkit sandbox\"\r\n"
    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
)


class BadRequest(ValueError):
    """The client did not speak HTTP/1.1 to the proxy."""


def _response(status: int, reason: str, body: bytes = b"", content_type: str = "text/plain") -> bytes:
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
    if body:
        head += f"Content-Type: {content_type}\r\n"
    return head.encode() + b"\r\n" + body


def split_target(target: str) -> tuple[str, int]:
    """`host:port` of a CONNECT target, host lower-cased, IPv6 brackets removed."""
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise BadRequest(f"bad CONNECT target {target!r}")
    return host.strip("[]").lower(), int(port)


class ForwardProxy:
    """An HTTP forward proxy on 127.0.0.1 for a fixed set of HTTPS hosts."""

    def __init__(
        self,
        state: SandboxState,
        hosts: tuple[str, ...],
        tls: ssl.SSLContext,
        protocol_factory: Callable[[], asyncio.Protocol],
        control: ControlHandler,
        port: int = 0,
        http1_tls: ssl.SSLContext | None = None,
        auth: tuple[str, str] | None = None,
    ) -> None:
        self.state, self.hosts, self.tls = state, hosts, tls
        self.http1_tls = http1_tls  # used instead of `tls` while the `http2` knob is off
        # authenticated mode: proxy requests need `Proxy-Authorization: Basic` with these, else 407
        self._expected = None if auth is None else "Basic " + base64.b64encode(":".join(auth).encode()).decode()
        self.protocol_factory, self.control = protocol_factory, control
        self.requested_port = port
        self.port = 0
        self._listener: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._clients: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.requested_port))
        listener.listen(1024)
        listener.setblocking(False)
        self._listener, self.port = listener, listener.getsockname()[1]
        self._accepting = asyncio.get_running_loop().create_task(self._accept_loop())

    async def stop(self) -> None:
        if self._accepting is not None:
            self._accepting.cancel()
            await asyncio.gather(self._accepting, return_exceptions=True)
        if self._listener is not None:
            self._listener.close()
        for task in list(self._clients):
            task.cancel()
        await asyncio.gather(*self._clients, return_exceptions=True)

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._listener is not None
        while True:
            conn, peer = await loop.sock_accept(self._listener)
            conn.setblocking(False)
            task = loop.create_task(self._serve(conn, peer[:2]))
            self._clients.add(task)
            task.add_done_callback(self._clients.discard)

    async def _serve(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        handed_over = False
        try:
            method, target, headers, rest = await asyncio.wait_for(self._read_head(conn), IO_TIMEOUT)
            if not target.startswith("/") and not self._authorized(headers):
                self.state.refused.append({"time": time.time(), "host": target, "port": 0, "method": "407"})
                await loop.sock_sendall(conn, _PROXY_AUTH_REQUIRED)
            elif method == "CONNECT":
                handed_over = await self._tunnel(conn, peer, target, rest)
            elif target.startswith("/"):
                body = await asyncio.wait_for(self._read_body(conn, headers, rest), IO_TIMEOUT)
                status, payload = await self.control(method, target, body)
                data = json.dumps(payload, indent=1).encode()
                await loop.sock_sendall(conn, _response(status, "OK" if status < 400 else "Error", data, "application/json"))
            else:
                await loop.sock_sendall(conn, self._absolute_form(method, target))
        except BadRequest as exc:
            await _send_quietly(conn, _response(400, "Bad Request", str(exc).encode()))
        except (TimeoutError, OSError, NotClientHello, ssl.SSLError):
            pass
        finally:
            if not handed_over:
                conn.close()

    async def _tunnel(self, conn: socket.socket, peer: tuple[str, int], target: str, rest: bytes) -> bool:
        loop = asyncio.get_running_loop()
        host, port = split_target(target)
        if host not in self.hosts or port != 443:
            self._refuse(host, port, "CONNECT")
            await loop.sock_sendall(conn, _response(403, "Forbidden", self._refusal_text(host, port)))
            return False
        if rest:
            raise BadRequest("data sent before the tunnel was established")
        await loop.sock_sendall(conn, b"HTTP/1.1 200 Connection established\r\n\r\n")
        hello = parse_client_hello(await asyncio.wait_for(self._peek_hello(conn), IO_TIMEOUT))
        self.state.open_tunnel(host, peer, hello)
        tls = self.http1_tls if self.http1_tls is not None and not self.state.knobs.http2 else self.tls
        await loop.connect_accepted_socket(
            self.protocol_factory, conn, ssl=tls, ssl_handshake_timeout=IO_TIMEOUT
        )
        return True

    def _authorized(self, headers: dict[str, str]) -> bool:
        if self._expected is None:
            return True
        return hmac.compare_digest(headers.get("proxy-authorization", "").encode(), self._expected.encode())

    def _absolute_form(self, method: str, target: str) -> bytes:
        """A plain-HTTP proxy request: the replica hosts redirect to HTTPS, others are refused."""
        parts = urlsplit(target)
        host = (parts.hostname or "").lower()
        if host in self.hosts:
            location = "https://" + host + (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            return (
                b"HTTP/1.1 301 Moved Permanently\r\nLocation: " + location.encode()
                + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
        self._refuse(host, parts.port or 80, method)
        return _response(403, "Forbidden", self._refusal_text(host, parts.port or 80))

    def _refuse(self, host: str, port: int, method: str) -> None:
        self.state.refused.append({"time": time.time(), "host": host, "port": port, "method": method})
        log.warning("sandbox proxy refused %s %s:%s (only %s are served)", method, host, port, ", ".join(self.hosts))

    def _refusal_text(self, host: str, port: int) -> bytes:
        return (
            f"harvestkit sandbox: {host}:{port} is not served; this proxy only answers for "
            f"{', '.join(self.hosts)} on port 443\n"
        ).encode()

    # -- reading --------------------------------------------------------------------------------
    async def _read_head(self, conn: socket.socket) -> tuple[str, str, dict[str, str], bytes]:
        loop = asyncio.get_running_loop()
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await loop.sock_recv(conn, 65536)
            if not chunk:
                raise ConnectionResetError("client closed before sending a request")
            data += chunk
            if len(data) > MAX_HEAD and b"\r\n\r\n" not in data[: MAX_HEAD + 4]:
                raise BadRequest("request head too large")
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ")
        except ValueError:
            raise BadRequest("malformed request line") from None
        if not version.startswith("HTTP/1."):
            raise BadRequest("only HTTP/1.x is spoken here")
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise BadRequest("malformed header line")
            headers[name.strip().lower()] = value.strip()
        return method.upper(), target, headers, rest

    async def _read_body(self, conn: socket.socket, headers: dict[str, str], rest: bytes) -> bytes:
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise BadRequest("bad Content-Length") from None
        if length > MAX_BODY or length < 0:
            raise BadRequest("body too large")
        loop = asyncio.get_running_loop()
        body = rest
        while len(body) < length:
            chunk = await loop.sock_recv(conn, length - len(body))
            if not chunk:
                raise ConnectionResetError("client closed mid-body")
            body += chunk
        return body[:length]

    async def _peek_hello(self, conn: socket.socket) -> bytes:
        """The client's first TLS record, left unread for the TLS server."""
        loop = asyncio.get_running_loop()
        pause = 0.002
        while True:
            readable = loop.create_future()
            loop.add_reader(conn.fileno(), lambda done=readable: done.done() or done.set_result(None))
            try:
                await readable
            finally:
                loop.remove_reader(conn.fileno())
            data = conn.recv(MAX_HEAD, socket.MSG_PEEK)
            if not data:
                raise ConnectionResetError("client closed before its ClientHello")
            if len(data) >= needed_bytes(data):
                return data
            # A hello split across segments: let the rest arrive. The peeked bytes keep the socket
            # readable, so back off: a client holding half a hello must not keep the loop spinning.
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)


async def _send_quietly(conn: socket.socket, data: bytes) -> None:
    try:
        await asyncio.get_running_loop().sock_sendall(conn, data)
    except OSError:
        pass
