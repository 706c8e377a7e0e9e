"""The curl_cffi transport: HTTP and WebSocket with browser TLS fingerprints (its failures become
typed errors in curl_errors.py).

The one module that touches curl_cffi's internals (``tests/test_client_transport.py`` checks
each one it relies on). :class:`CurlTransport` implements the
:class:`~harvestkit.client.base_transport.Transport` protocol with one curl_cffi session per
event loop; a :class:`Response` is read chunk by chunk under an idle timeout and aborted (the
connection released, the server sees the disconnect) when closed early. The sessions keep no
cookies: each request carries its own ``Cookie`` header.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import re
import weakref
from typing import Any

from curl_cffi import CurlECode, CurlError, CurlInfo, CurlWsFlag
from curl_cffi._wrapper import ffi, lib
from curl_cffi.requests import AsyncSession
from curl_cffi.requests import exceptions as curl_errors
from harvestkit.cache import Cookie, parse_netscape_cookies

from .base_transport import Request, fetch_headers
from .curl_errors import translate
from .errors import ClientError, ConnectError, ProtocolError, Timeout
from .idle import IdleWatch
from .responses import error_from_response

__all__ = [
    "CurlTransport",
    "Request",
    "Response",
    "Transport",
    "WebSocket",
    "close_loop_sessions",
    "curl_kwargs",
    "fetch_headers",
]

MAX_ERROR_BODY = 1 << 20
_REFUSED = re.compile(r"Refused WebSocket upgrade: (\d{3})")


def curl_kwargs(request: Request) -> dict[str, Any]:
    """The curl_cffi keyword arguments shared by HTTP requests and WebSocket connects (cookies
    only in the request's one ``Cookie`` header: curl's cookie engine is never given any)."""
    kwargs: dict[str, Any] = {
        "headers": request.all_headers(),
        "impersonate": request.identity.impersonate,
        "timeout": (request.connect_timeout, request.idle_timeout),
    }
    if request.proxy:
        kwargs["proxy"] = request.proxy
    if request.ca_bundle:
        kwargs["verify"] = request.ca_bundle
    return kwargs


class Response:
    """A response whose headers have arrived; the body is read with :meth:`iter_bytes` or
    :meth:`read`. Always :meth:`aclose` it (the provider's stream does)."""

    def __init__(self, raw: Any, session: AsyncSession, provider: str, url: str, proxy: str | None = None) -> None:
        self._raw = raw
        self._session = session
        self.provider = provider
        self.url = url
        self._proxy = proxy  # the request's: a refusal names it
        self.status: int = raw.status_code
        self.headers: dict[str, str] = {k.lower(): v for k, v in raw.headers.items() if v is not None}
        self.set_cookies: list[str] = [v for v in raw.headers.get_list("set-cookie") if v]
        self._done = False
        self._pending: Any = None
        self._idle = IdleWatch(asyncio.get_running_loop())

    async def next_chunk(self, timeout: float) -> bytes | None:
        """What arrived of the body since the last call (every piece waiting, joined), None at
        its end. A silence longer than ``timeout`` raises :class:`TimeoutError`; a broken
        transfer a :class:`ClientError`, once the data that came before it was returned."""
        queue = self._raw.queue
        item, self._pending = self._pending, None
        if item is None:
            if self._done:
                return None
            item = queue.get_nowait() if not queue.empty() else await self._idle.wait(queue.get(), timeout, "data")
        pieces: list[bytes] = []
        while isinstance(item, bytes):
            pieces.append(item)
            if queue.empty():
                return b"".join(pieces)
            item = queue.get_nowait()
        if pieces:  # an error or the end marker: for the next call, after this data
            self._pending = item
            return b"".join(pieces)
        self._done = True
        if isinstance(item, BaseException):
            raise translate(item, self.provider, self.url, self._proxy) from None
        return None  # curl_cffi's end-of-stream marker

    async def read(self, limit: int = MAX_ERROR_BODY, timeout: float = 30.0) -> bytes:
        """The whole body (at most ``limit`` bytes are kept)."""
        parts: list[bytes] = []
        size = 0
        while (data := await self.next_chunk(timeout)) is not None:
            if size < limit:
                parts.append(data[: limit - size])
                size += len(parts[-1])
        return b"".join(parts)

    async def aclose(self) -> None:
        """Release the transfer; one not read to its end is aborted."""
        self._idle.close()
        task = getattr(self._raw, "astream_task", None)
        if task is None:
            return
        if not self._done and not task.done():
            self._raw.quit_now.set()
            with contextlib.suppress(Exception):
                self._session.acurl.remove_handle(self._raw.curl)
        await asyncio.gather(task, return_exceptions=True)
        self._done = True


class WebSocket:
    """A connected WebSocket: text frames in and out, closed by :meth:`aclose`.

    Frames are read straight from the curl handle: curl_cffi's reader task is cancelled before
    its first step (it cost a task step, a queue hand-off and a waiter task per frame, more than
    the frame's decoding). Sends and the closing handshake stay curl_cffi's. ``cookies`` holds
    what the upgrade response set (curl's cookie engine parsed it)."""

    def __init__(self, raw: Any, provider: str, url: str, proxy: str | None = None) -> None:
        self._raw = raw
        self.provider = provider
        self.url = url
        self._proxy = proxy
        self.cookies: list[Cookie] = []
        reader = getattr(raw, "_read_task", None)
        if reader is not None:  # created by ws_connect, not yet run: no frame was taken
            reader.cancel()
        self._curl = raw.curl
        self._fd: int = self._curl.getinfo(CurlInfo.ACTIVESOCKET)
        self._idle = IdleWatch(raw.loop)
        # curl_ws_recv called as libcurl has it (curl_cffi's ws_recv costs a buffer object, a
        # frame object and an exception per call more): the frame's bytes, its size and meta
        self._buffer = ffi.new("char[]", _RECV_SIZE)
        self._received = ffi.new("size_t *")
        self._meta = ffi.new("struct curl_ws_frame **")
        self._parts: list[bytes] = []
        self._size = 0
        self._ended = False
        self._error: ClientError | None = None  # raised by the next read (see buffered)
        with contextlib.suppress(Exception):
            lines = self._curl.getinfo(CurlInfo.COOKIELIST) or []
            text = "\n".join(line.decode() if isinstance(line, bytes) else str(line) for line in lines)
            self.cookies = parse_netscape_cookies(text)

    async def send(self, text: str) -> None:
        try:
            await self._raw.send_str(text)
        except Exception as exc:  # noqa: BLE001 - every transport failure becomes typed
            raise translate(exc, self.provider, self.url, self._proxy) from None

    async def recv(self, idle_timeout: float) -> str | None:
        """The next text frame; None once the server closed the socket (a close frame, or the
        connection ended); a silence longer than ``idle_timeout`` raises :class:`TimeoutError`."""
        while (frame := self._take()) is _AGAIN:
            await self._readable(idle_timeout)
        return frame

    def buffered(self) -> list[str]:
        """The text frames that have arrived and read without waiting (maybe none). A failure
        after some of them is raised by the next call, once they are returned."""
        frames: list[str] = []
        try:
            while (frame := self._take()) is not _AGAIN and frame is not None:
                frames.append(frame)
        except ClientError as error:
            if not frames:
                raise
            self._error = error
        return frames

    def _take(self) -> Any:
        """One whole text frame, None once the socket closed, or ``_AGAIN`` if none is in."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        buffer, received = self._buffer, self._received
        while not self._ended:
            handle = self._curl._curl
            if handle is None:  # curl_cffi closed the handle under the socket
                self._ended = True
                raise ConnectError(f"the WebSocket to {self.url.split('?', 1)[0]} was closed", provider=self.provider)
            code = _ws_recv(handle, buffer, _RECV_SIZE, received, self._meta)
            if code:
                if code == _AGAIN_CODE:
                    return _AGAIN
                exc: CurlError = self._curl._get_error(code, "WS_RECV")
                if code == CurlECode.RECV_ERROR and _EAGAIN in str(exc).lower():
                    return _AGAIN
                self._ended = True
                if code == CurlECode.GOT_NOTHING:  # the server closed without a close frame
                    return None
                raise translate(exc, self.provider, self.url, self._proxy) from None
            frame = self._meta[0]
            flags = frame.flags
            chunk = ffi.unpack(buffer, received[0])
            if flags == _TEXT and not self._parts and not frame.bytesleft:  # most: a whole frame
                return chunk.decode("utf-8", "replace")
            if flags & _DATA:
                self._size += len(chunk)
                if self._size > MAX_MESSAGE:
                    self._ended = True
                    raise ProtocolError(f"a WebSocket message from {self.url.split('?', 1)[0]} is larger than "
                                        f"{MAX_MESSAGE >> 20} MiB", provider=self.provider)  # fmt: skip
                self._parts.append(chunk)
                if flags & _CONT or frame.bytesleft:
                    continue
                data = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
                self._parts.clear()
                self._size = 0
                return data.decode("utf-8", "replace")
            if flags & _CLOSE:
                self._ended = True
            # a ping (curl answers it) or a pong: nothing for the caller
        return None

    async def _readable(self, timeout: float) -> None:
        """Wait until the socket has data; :class:`TimeoutError` after ``timeout`` seconds."""
        loop = self._raw.loop
        waiter = loop.create_future()
        loop.add_reader(self._fd, _settle, waiter)
        try:
            await self._idle.wait(waiter, timeout, "frame")
        finally:
            loop.remove_reader(self._fd)

    async def aclose(self) -> None:
        self._ended = True
        self._idle.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._raw.close(), 2.0)
        with contextlib.suppress(Exception):
            self._raw.terminate()


MAX_MESSAGE = 4 << 20  # curl_cffi's own default limit of one received message
_RECV_SIZE = 128 << 10  # what one curl_ws_recv may return (curl_cffi's size too)
_ws_recv = lib.curl_ws_recv
_AGAIN_CODE = int(CurlECode.AGAIN)
_DATA = int(CurlWsFlag.TEXT | CurlWsFlag.BINARY | CurlWsFlag.CONT)
_TEXT, _CONT, _CLOSE = int(CurlWsFlag.TEXT), int(CurlWsFlag.CONT), int(CurlWsFlag.CLOSE)
_EAGAIN = "errno 11"  # BoringSSL reports a would-block read as a receive error
_AGAIN = object()  # WebSocket._take: no whole frame has arrived yet


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


_HANDLE: contextvars.ContextVar[asyncio.Future[Any] | None] = contextvars.ContextVar("harvestkit_curl", default=None)


class _Session(AsyncSession):
    """An ``AsyncSession`` that tells :meth:`Transport.send` which curl handle a request got,
    and whose requests wait for a free handle when live WebSockets hold them all, as with
    curl_cffi 0.16 (0.17 raises at once)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._returned = asyncio.Event()  # set when a handle comes back to the pool

    def push_curl(self, curl: Any) -> None:
        super().push_curl(curl)
        returned, self._returned = self._returned, asyncio.Event()
        returned.set()

    async def pop_curl(self) -> Any:
        while True:
            returned = self._returned
            try:
                curl = await super().pop_curl()
                break
            except curl_errors.RequestException:  # every handle is held by a live WebSocket
                if not self.pool.empty():
                    raise
                await returned.wait()
        waiting = _HANDLE.get()
        if waiting is not None and not waiting.done():
            waiting.set_result(curl)
        return curl


class CurlTransport:
    """One client's connections: one curl_cffi ``AsyncSession`` per running event loop.

    ``provider`` names the errors it raises before a site adapter knows better."""

    def __init__(self, provider: str = "harvestkit") -> None:
        self.provider = provider
        self._sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncSession] = (
            weakref.WeakKeyDictionary()
        )
        _TRANSPORTS.add(self)

    def session(self, max_connections: int = 64) -> AsyncSession:
        """This loop's session, created on first use and kept for keep-alive; at most
        ``max_connections`` transfers run at once, more wait for a free one."""
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None:
            # discard_cookies: no response (an HTTP answer or, from curl_cffi 0.17, a WebSocket
            # upgrade) ever fills the session's jar, which curl would send as a second Cookie
            # header beside the one each request carries.
            session = _Session(max_clients=max_connections, discard_cookies=True)
            self._sessions[loop] = session
        return session

    async def send(self, request: Request) -> Response:
        """Send ``request``; return once its status and headers arrived (body still streaming).

        curl_cffi hands a streamed response over with its first body byte (curl's own limit on
        that wait is several seconds longer than connect + idle timeout): once a connection is
        free, the wait is bounded by those two timeouts here, and a request abandoned while
        waiting (timeout, cancellation) is aborted at once."""
        session, name = self.session(request.max_connections), request.provider or self.provider
        handle: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        token = _HANDLE.set(handle)
        try:
            sending = asyncio.ensure_future(session.request(
                request.method,
                request.url,
                json=request.json,
                stream=True,
                **curl_kwargs(request),
            ))  # fmt: skip
        finally:
            _HANDLE.reset(token)
        limit = request.connect_timeout + request.idle_timeout
        try:
            await asyncio.wait((sending, handle), return_when=asyncio.FIRST_COMPLETED)  # a free connection
            async with asyncio.timeout(limit):
                raw = await sending
        except TimeoutError:
            where = request.url.split("?", 1)[0]
            raise Timeout(f"no response from {where} in {limit:g} s", provider=name) from None
        except curl_errors.RequestException as exc:
            raise translate(exc, name, request.url, request.proxy) from None
        finally:
            if not sending.done() or sending.cancelled():  # abandoned: stop the transfer now
                sending.cancel()
                if handle.done():
                    with contextlib.suppress(Exception):
                        session.acurl.remove_handle(handle.result())
        return Response(raw, session, name, request.url, request.proxy)

    async def websocket(self, request: Request) -> WebSocket:
        """Open a WebSocket with the request's identity, headers and cookies."""
        session, name = self.session(request.max_connections), request.provider or self.provider
        kwargs = curl_kwargs(request)
        kwargs["timeout"] = request.connect_timeout
        try:  # drain_on_error: frames that arrived before the connection broke are still read
            raw = await session.ws_connect(request.url, drain_on_error=True, **kwargs)
        except Exception as exc:  # noqa: BLE001 - curl_cffi raises several unrelated types here
            refused = _REFUSED.search(str(exc))
            if refused:  # the server answered the upgrade with an HTTP error status
                raise error_from_response(int(refused.group(1)), {}, b"", name) from None
            raise translate(exc, name, request.url, request.proxy) from None
        return WebSocket(raw, name, request.url, request.proxy)

    async def aclose(self) -> None:
        """Close the session of the running loop, if any."""
        with contextlib.suppress(RuntimeError):
            session = self._sessions.pop(asyncio.get_running_loop(), None)
            if session is not None:
                await session.close()


Transport = CurlTransport  # the name this module gave it before the protocol existed

_TRANSPORTS: weakref.WeakSet[CurlTransport] = weakref.WeakSet()


async def close_loop_sessions() -> None:
    """Close every transport's session on the running loop (before the loop goes away)."""
    for transport in list(_TRANSPORTS):
        await transport.aclose()
