"""HTTP and WebSocket over curl_cffi: one session per provider per event loop, typed errors.

This layer knows nothing of wire formats or credentials: it sends a :class:`Request` and hands
back a :class:`Response` whose body is read chunk by chunk under an idle timeout, and which is
aborted (the connection released, the server sees the disconnect) when closed early.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import re
import weakref
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from curl_cffi import CurlInfo
from curl_cffi.requests import AsyncSession
from curl_cffi.requests import exceptions as curl_errors
from harvestkit.cache import Cookie, parse_netscape_cookies
from harvestkit.cache.redact import redact_url

from .errors import ClientError, ConnectError, Timeout, redact_text
from .impersonate import BrowserIdentity
from .responses import error_from_response

__all__ = ["Request", "Response", "Transport", "WebSocket", "close_loop_sessions", "fetch_headers", "translate"]

MAX_ERROR_BODY = 1 << 20
_REFUSED = re.compile(r"Refused WebSocket upgrade: (\d{3})")


def fetch_headers(site: str = "same-origin", mode: str = "cors") -> dict[str, str | None]:
    """The fetch metadata a page's script request carries (curl_cffi's defaults are those of a
    navigation); ``None`` removes a default header."""
    dest = "websocket" if mode == "websocket" else "empty"
    return {
        "Sec-Fetch-Site": site,
        "Sec-Fetch-Mode": mode,
        "Sec-Fetch-Dest": dest,
        "Sec-Fetch-User": None,
        "Upgrade-Insecure-Requests": None,
    }


@dataclass
class Request:
    """One HTTP request, with everything the transport needs to present it."""

    method: str
    url: str
    identity: BrowserIdentity
    headers: dict[str, str | None] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    json: Any = None
    proxy: str | None = None
    ca_bundle: str | None = None
    connect_timeout: float = 10.0
    idle_timeout: float = 60.0
    max_connections: int = 64  # of the loop's session, when this request creates it

    def curl_kwargs(self) -> dict[str, Any]:
        """The curl_cffi keyword arguments shared by HTTP requests and WebSocket connects."""
        headers: dict[str, str | None] = {**self.identity.headers(), **self.headers}
        if self.cookies:  # one header, as a browser sends it (curl's cookie engine stays empty)
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        kwargs: dict[str, Any] = {
            "headers": headers,
            "impersonate": self.identity.impersonate,
            "timeout": (self.connect_timeout, self.idle_timeout),
        }
        if self.proxy:
            kwargs["proxy"] = self.proxy
        if self.ca_bundle:
            kwargs["verify"] = self.ca_bundle
        return kwargs


_TUNNEL_REFUSED = re.compile(r"CONNECT tunnel failed, response (\d{3})|Received HTTP code (\d{3}) from proxy")
_PROXY_REFUSALS = {
    "407": "wrong or missing proxy credentials: check the user and password in the proxy URL",
    "403": "the proxy does not allow this host",
}


def translate(exc: BaseException, provider: str, url: str, proxy: str | None = None) -> ClientError:
    """A curl_cffi failure as the client's error (the URL without its query; a proxy named
    without its password: `proxy`, else HARVESTKIT_PROXY)."""
    where = url.split("?", 1)[0]
    message = redact_text(str(exc).split(". See ", 1)[0])
    if isinstance(exc, curl_errors.Timeout):
        return Timeout(f"timed out talking to {where}: {message}", provider=provider)
    refused = _TUNNEL_REFUSED.search(message)
    if refused:
        status = refused.group(1) or refused.group(2)
        named = redact_url(proxy or os.environ.get("HARVESTKIT_PROXY")) or "the proxy"
        host = urlsplit(url).hostname or where
        why = _PROXY_REFUSALS.get(status, "the proxy refused the tunnel")
        return ConnectError(
            f"proxy {named} refused to connect to {host} (HTTP {status}): {why}",
            provider=provider, hint="Check the proxy (HARVESTKIT_PROXY or proxy=).",
        )  # fmt: skip
    if "(100)" in message or "request too large" in message.lower():
        return ClientError(
            f"the request to {where} is too large to send: the cached {provider} session's cookies or headers "
            "are too big",
            provider=provider,
            hint=f"See `harvestkit cache show {provider}`; `harvestkit cache clear {provider}` and harvest again.",
        )
    return ConnectError(f"cannot reach {where}: {message}", provider=provider)


class Response:
    """A response whose headers have arrived; the body is read with :meth:`iter_bytes` or
    :meth:`read`. Always :meth:`aclose` it (the provider's stream does)."""

    def __init__(self, raw: Any, session: AsyncSession, provider: str, url: str) -> None:
        self._raw = raw
        self._session = session
        self.provider = provider
        self.url = url
        self.status: int = raw.status_code
        self.headers: dict[str, str] = {k.lower(): v for k, v in raw.headers.items() if v is not None}
        self.set_cookies: list[str] = [v for v in raw.headers.get_list("set-cookie") if v]
        self._done = False
        self._pending: Any = None

    async def next_chunk(self, timeout: float) -> bytes | None:
        """What arrived of the body since the last call (every piece waiting, joined), None at
        its end. A silence longer than ``timeout`` raises :class:`TimeoutError`; a broken
        transfer a :class:`ClientError`, once the data that came before it was returned."""
        queue = self._raw.queue
        item, self._pending = self._pending, None
        if item is None:
            if self._done:
                return None
            if queue.empty():
                async with asyncio.timeout(timeout):
                    item = await queue.get()
            else:
                item = queue.get_nowait()
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
            raise translate(item, self.provider, self.url) from None
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

    ``cookies`` holds what the upgrade response set (curl's cookie engine parsed it)."""

    def __init__(self, raw: Any, provider: str, url: str) -> None:
        self._raw = raw
        self.provider = provider
        self.url = url
        self.cookies: list[Cookie] = []
        with contextlib.suppress(Exception):
            lines = raw.curl.getinfo(CurlInfo.COOKIELIST) or []
            text = "\n".join(line.decode() if isinstance(line, bytes) else str(line) for line in lines)
            self.cookies = parse_netscape_cookies(text)

    async def send(self, text: str) -> None:
        try:
            await self._raw.send_str(text)
        except Exception as exc:  # noqa: BLE001 - every transport failure becomes typed
            raise translate(exc, self.provider, self.url) from None

    async def recv(self, idle_timeout: float) -> str | None:
        """The next text frame; None once the server closed the socket."""
        try:
            data, _flags = await asyncio.wait_for(self._raw.recv(), idle_timeout)
        except TimeoutError:
            raise
        except Exception as exc:  # noqa: BLE001
            if getattr(self._raw, "closed", False) or "closed" in str(exc).lower():
                return None
            raise translate(exc, self.provider, self.url) from None
        return data.decode("utf-8", "replace") if isinstance(data, bytes) else data

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._raw.close(), 2.0)
        with contextlib.suppress(Exception):
            self._raw.terminate()


_HANDLE: contextvars.ContextVar[asyncio.Future[Any] | None] = contextvars.ContextVar("harvestkit_curl", default=None)


class _Session(AsyncSession):
    """An ``AsyncSession`` that tells :meth:`Transport.send` which curl handle a request got."""

    async def pop_curl(self) -> Any:
        curl = await super().pop_curl()
        waiting = _HANDLE.get()
        if waiting is not None and not waiting.done():
            waiting.set_result(curl)
        return curl


class Transport:
    """The sessions of one provider: one curl_cffi ``AsyncSession`` per running event loop."""

    def __init__(self, provider: str) -> None:
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
            session = _Session(max_clients=max_connections)
            self._sessions[loop] = session
        return session

    async def send(self, request: Request) -> Response:
        """Send ``request``; return once its status and headers arrived (body still streaming).

        curl_cffi hands a streamed response over with its first body byte (curl's own limit on
        that wait is several seconds longer than connect + idle timeout): once a connection is
        free, the wait is bounded by those two timeouts here, and a request abandoned while
        waiting (timeout, cancellation) is aborted at once."""
        session = self.session(request.max_connections)
        handle: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        token = _HANDLE.set(handle)
        try:
            sending = asyncio.ensure_future(session.request(
                request.method,
                request.url,
                json=request.json,
                stream=True,
                discard_cookies=True,  # cookies travel per request, never in the shared session
                **request.curl_kwargs(),
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
            raise Timeout(f"no response from {where} in {limit:g} s", provider=self.provider) from None
        except curl_errors.RequestException as exc:
            raise translate(exc, self.provider, request.url) from None
        finally:
            if not sending.done() or sending.cancelled():  # abandoned: stop the transfer now
                sending.cancel()
                if handle.done():
                    with contextlib.suppress(Exception):
                        session.acurl.remove_handle(handle.result())
        return Response(raw, session, self.provider, request.url)

    async def websocket(self, request: Request) -> WebSocket:
        """Open a WebSocket with the request's identity, headers and cookies."""
        session = self.session(request.max_connections)
        kwargs = request.curl_kwargs()
        kwargs["timeout"] = request.connect_timeout
        try:  # drain_on_error: frames that arrived before the connection broke are still read
            raw = await session.ws_connect(request.url, drain_on_error=True, **kwargs)
        except Exception as exc:  # noqa: BLE001 - curl_cffi raises several unrelated types here
            refused = _REFUSED.search(str(exc))
            if refused:  # the server answered the upgrade with an HTTP error status
                raise error_from_response(int(refused.group(1)), {}, b"", self.provider) from None
            raise translate(exc, self.provider, request.url) from None
        return WebSocket(raw, self.provider, request.url)

    async def aclose(self) -> None:
        """Close the session of the running loop, if any."""
        with contextlib.suppress(RuntimeError):
            session = self._sessions.pop(asyncio.get_running_loop(), None)
            if session is not None:
                await session.close()


_TRANSPORTS: weakref.WeakSet[Transport] = weakref.WeakSet()


async def close_loop_sessions() -> None:
    """Close every transport's session on the running loop (before the loop goes away)."""
    for transport in list(_TRANSPORTS):
        await transport.aclose()
