"""One call in flight: its settings, options, credentials source, deadline and transport.

A site adapter builds requests with :meth:`Call.request`, sends them with :meth:`Call.send`
(the cookies a response sets are merged into the cache at once; an error status becomes the
error tree's class) and reads streamed bodies with :meth:`Call.events`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from .base_transport import HTTPResponse, Request, Transport, WebSocketConnection
from .credentials import Credentials, SiteAuth
from .errors import ClientError, ConnectError, StreamBroken, StreamTimeout, Timeout
from .events import Event
from .options import ChatOptions
from .parsers._common import StreamParser
from .responses import error_from_response
from .retry import RetryPolicy
from .settings import Settings

__all__ = ["Call"]


@dataclass
class Call:
    """Everything one call needs, resolved by the client from its settings and the keywords."""

    site: str
    settings: Settings
    urls: dict[str, str]
    auth: SiteAuth
    transport: Transport
    options: ChatOptions
    generation: str = "auto"  # Cloudflare: which protocol generation to use
    deadline: float | None = None

    @property
    def retry(self) -> RetryPolicy:
        s = self.settings
        return RetryPolicy(s.max_retries, s.backoff_base, s.backoff_cap, s.max_retry_wait)

    def idle(self) -> float:
        """How long the next read may wait: the idle timeout, bounded by the total deadline."""
        idle = self.settings.idle_timeout
        if self.deadline is None:
            return idle
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Timeout(f"the request took longer than its total timeout ({self.settings.total_timeout:g} s)")
        return min(idle, left)

    def request(
        self,
        credentials: Credentials,
        method: str,
        url: str,
        headers: dict[str, str | None],
        body: Any = None,
        *,
        cookies: bool = True,
    ) -> Request:
        """A request presenting ``credentials`` (their cookies for ``url`` unless ``cookies`` is
        false), through their proxy, with this call's CA and timeouts."""
        jar = credentials.cookie_jar(url.replace("wss://", "https://", 1)) if cookies else {}
        return Request(
            method,
            url,
            credentials.identity,
            headers=headers,
            cookies=jar,
            json=body,
            proxy=credentials.proxy,
            ca_bundle=self.settings.ca_bundle,
            connect_timeout=self.settings.connect_timeout,
            idle_timeout=self.settings.idle_timeout,
            max_connections=self.settings.max_connections,
            provider=self.site,
        )

    async def send(self, credentials: Credentials, request: Request) -> HTTPResponse:
        """Send; merge the cookies the response sets; raise an error status as the error tree's
        class (its body read first)."""
        response = await self.transport.send(request)
        try:
            await self.auth.merge_set_cookies(credentials, request.url, response.set_cookies)
            await self.auth.observe(response.headers)  # a pool member's rate-limit budget
            if response.status < 400:
                return response
            body = await response.read(timeout=self.idle())
        except BaseException:
            await response.aclose()
            raise
        await response.aclose()
        raise error_from_response(response.status, response.headers, body, self.site)

    async def read(self, credentials: Credentials, request: Request) -> bytes:
        """The whole body of a successful response to ``request``."""
        response = await self.send(credentials, request)
        try:
            return await response.read(timeout=self.idle())
        finally:
            await response.aclose()

    async def websocket(self, credentials: Credentials, request: Request) -> WebSocketConnection:
        """A connected socket; the cookies its upgrade set are merged at once."""
        ws = await self.transport.websocket(request)
        try:
            await self.auth.merge_cookies(credentials, ws.cookies)
        except BaseException:
            await ws.aclose()
            raise
        return ws

    async def events(self, response: HTTPResponse, parser: StreamParser) -> AsyncGenerator[list[Event], None]:
        """The events of a streamed body, a batch per network read. A silence beyond the idle timeout raises
        :class:`StreamTimeout`; a transfer that breaks mid-way ends the stream if the parser saw
        it complete, else raises :class:`StreamBroken` (the stream fills in the text so far)."""
        received = False
        cause: ClientError | None = None  # the transfer broke: the parser says if it was complete
        while True:
            wait = self.idle()
            try:
                data = await response.next_chunk(wait)
            except TimeoutError:
                raise StreamTimeout(f"no data for {wait:g} s", provider=response.provider) from None
            except (ConnectError, Timeout) as error:
                if not received:
                    raise
                cause = error
                break
            if data is None:
                break
            received = True
            batch = parser.feed(data)
            if batch:
                yield batch
        tail: list[Event] = []
        try:
            tail.extend(parser.finish())  # the last events reach the caller before the error
        except StreamBroken as broken:
            if tail:
                yield tail
            if cause is None:
                raise
            broken.cause = cause
            raise broken from cause
        if tail:
            yield tail
