"""A transport that answers from functions, for tests (as httpx's ``MockTransport``).

    def answer(request: Request) -> MockResponse:
        return MockResponse(200, {"content-type": "text/event-stream"}, [b"data: ...\\n\\n"])

    async with Client(transport=MockTransport(answer)) as client: ...

A handler may be sync or async. ``MockResponse.body`` is bytes or a list of chunks (each one
``next_chunk`` result; a ``BaseException`` among them is raised in its place, as a broken
transfer). Every request is kept in ``transport.requests``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harvestkit.cache import Cookie, parse_set_cookies

from .base_transport import Request
from .errors import ClientError

__all__ = ["MockResponse", "MockTransport", "MockWebSocket"]

MAX_ERROR_BODY = 1 << 20


@dataclass
class MockResponse:
    """What the handler answers an HTTP request with."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | Sequence[bytes | BaseException] = b""
    set_cookies: list[str] = field(default_factory=list)
    provider: str = ""
    url: str = ""
    closed: bool = False

    def __post_init__(self) -> None:
        self.headers = {k.lower(): v for k, v in self.headers.items()}
        self._chunks: list[bytes | BaseException] = [self.body] if isinstance(self.body, bytes) else list(self.body)

    async def next_chunk(self, timeout: float) -> bytes | None:
        while self._chunks:
            item = self._chunks.pop(0)
            if isinstance(item, BaseException):
                raise item
            if item:
                return item
        return None

    async def read(self, limit: int = MAX_ERROR_BODY, timeout: float = 30.0) -> bytes:
        parts = []
        while (data := await self.next_chunk(timeout)) is not None:
            parts.append(data)
        return b"".join(parts)[:limit]

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class MockWebSocket:
    """A socket that answers each frame the client sends with ``reply(frame)`` (frames to
    deliver), and delivers ``frames`` first; ``sent`` keeps what the client sent."""

    frames: list[str] = field(default_factory=list)
    reply: Callable[[str], list[str]] | None = None
    set_cookies: list[str] = field(default_factory=list)
    provider: str = ""
    url: str = ""
    sent: list[str] = field(default_factory=list)
    closed: bool = False
    cookies: list[Cookie] = field(default_factory=list)

    async def send(self, text: str) -> None:
        if self.closed:
            raise ClientError("the socket is closed", provider=self.provider)
        self.sent.append(text)
        if self.reply is not None:
            self.frames.extend(self.reply(text))

    async def recv(self, idle_timeout: float) -> str | None:
        if not self.frames:
            return None  # the server closed
        return self.frames.pop(0)

    def buffered(self) -> list[str]:
        frames, self.frames = self.frames, []
        return frames

    async def aclose(self) -> None:
        self.closed = True


Handler = Callable[[Request], "MockResponse | Awaitable[MockResponse]"]
SocketHandler = Callable[[Request], "MockWebSocket | Awaitable[MockWebSocket]"]


async def _call(handler: Callable[[Request], Any], request: Request) -> Any:
    result = handler(request)
    return await result if inspect.isawaitable(result) else result


class MockTransport:
    """Answers HTTP requests with ``handler`` and WebSocket upgrades with ``websocket``."""

    def __init__(self, handler: Handler | None = None, websocket: SocketHandler | None = None) -> None:
        self.handler = handler
        self.socket_handler = websocket
        self.requests: list[Request] = []
        self.closed = False

    async def send(self, request: Request) -> MockResponse:
        self.requests.append(request)
        if self.handler is None:
            raise AssertionError(f"MockTransport has no HTTP handler for {request.method} {request.url}")
        response: MockResponse = await _call(self.handler, request)
        response.provider, response.url = request.provider, request.url
        return response

    async def websocket(self, request: Request) -> MockWebSocket:
        self.requests.append(request)
        if self.socket_handler is None:
            raise AssertionError(f"MockTransport has no WebSocket handler for {request.url}")
        socket: MockWebSocket = await _call(self.socket_handler, request)
        socket.provider, socket.url = request.provider, request.url
        socket.cookies = parse_set_cookies(socket.set_cookies, request.url.replace("wss://", "https://", 1))
        return socket

    async def aclose(self) -> None:
        self.closed = True
