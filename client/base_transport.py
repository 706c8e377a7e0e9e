"""The ``Transport`` protocol: what the client needs from the network, and nothing more.

A transport sends a :class:`Request` and hands back a :class:`HTTPResponse` whose body is read
chunk by chunk, or opens a :class:`WebSocketConnection`. It knows nothing of wire formats or
credentials. :class:`harvestkit.client.transport.CurlTransport` is the real one (curl_cffi,
browser TLS fingerprints); :class:`harvestkit.client.mock_transport.MockTransport` answers from
a function, for tests.

Cookies travel only in the ``Cookie`` header each request carries; a transport keeps none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from harvestkit.cache import Cookie

from .impersonate import BrowserIdentity

__all__ = ["HTTPResponse", "Request", "Transport", "WebSocketConnection", "fetch_headers"]


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
    """One HTTP request or WebSocket upgrade, with everything a transport needs to present it."""

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
    provider: str = ""  # the site the request is for: errors name it

    def all_headers(self) -> dict[str, str | None]:
        """The identity's headers, the request's, and one ``Cookie`` header (as a browser sends it)."""
        headers: dict[str, str | None] = {**self.identity.headers(), **self.headers}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        return headers


@runtime_checkable
class HTTPResponse(Protocol):
    """A response whose status and headers arrived; always :meth:`aclose` it."""

    provider: str
    url: str
    status: int
    headers: dict[str, str]  # lower-case names
    set_cookies: list[str]  # the raw Set-Cookie values

    async def next_chunk(self, timeout: float) -> bytes | None:
        """What arrived of the body since the last call, None at its end; a silence longer than
        ``timeout`` raises :class:`TimeoutError`, a broken transfer a ``ClientError`` (after the
        data that came before it was returned)."""
        ...

    async def read(self, limit: int = ..., timeout: float = ...) -> bytes:
        """The whole body (at most ``limit`` bytes kept)."""
        ...

    async def aclose(self) -> None:
        """Release the transfer; one not read to its end is aborted."""
        ...


@runtime_checkable
class WebSocketConnection(Protocol):
    """A connected WebSocket: text frames in and out; ``cookies`` holds what the upgrade set."""

    provider: str
    url: str
    cookies: list[Cookie]

    async def send(self, text: str) -> None: ...

    async def recv(self, idle_timeout: float) -> str | None:
        """The next text frame; None once the server closed; :class:`TimeoutError` on silence."""
        ...

    def buffered(self) -> list[str]:
        """The frames already received, without waiting (maybe none): what one network read
        brought beyond the frame :meth:`recv` returned."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Transport(Protocol):
    """Sends requests and opens WebSockets for one client."""

    async def send(self, request: Request) -> HTTPResponse:
        """Return once the status and headers arrived (the body still streaming)."""
        ...

    async def websocket(self, request: Request) -> WebSocketConnection:
        """Open a WebSocket; an upgrade refused with an HTTP status raises that status' error."""
        ...

    async def aclose(self) -> None:
        """Close the connections this transport holds on the running event loop."""
        ...
