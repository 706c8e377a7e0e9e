"""What the gateway records about each request: its id, the access-log line, and the stream hook.

Every request gets a :class:`RequestInfo` (``request[INFO]``) from the outermost middleware; the
handlers fill in the key name, provider, model, tokens and the first chunk's time, and the
access logger and the metrics read it when the request ends. The provider stream is observed
from outside (:func:`observed`), so the SSE write loop stays untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from harvestkit.cache import StoreTimeout, StoreUnavailable
from harvestkit.client import ClientError, Event, Usage

__all__ = ["INFO", "AccessLogger", "RequestInfo", "escape", "observed", "request_id_for"]

REQUEST_ID_HEADER = "X-Request-Id"
_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\\\"]")


def escape(value: object) -> str:
    """``value`` as one safe log field: CR, LF, every other control character, backslash and
    double quote written as escapes, so no field can start a forged line."""
    text = "-" if value is None else str(value)

    def one(match: re.Match[str]) -> str:
        char = match.group()
        return {"\r": "\\r", "\n": "\\n", "\t": "\\t", "\\": "\\\\", '"': '\\"'}.get(char, f"\\x{ord(char):02x}")

    return _CONTROL.sub(one, text) or '""'


def request_id_for(given: str | None) -> str:
    """The client's ``x-request-id`` when it is a plain token, else a new one."""
    if given and _ID.match(given):
        return given
    return "req_" + secrets.token_hex(12)


@dataclass
class RequestInfo:
    """One request as the log and the metrics see it."""

    id: str
    started: float  # time.monotonic()
    key_name: str | None = None
    endpoint: str = "unmatched"
    provider: str | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    first_chunk: float | None = None  # seconds from the start to the first upstream event
    upstream_error: str | None = None  # the client error class that failed the call
    error_message: str | None = None
    status: int | None = None

    def usage(self, usage: Usage) -> None:
        self.prompt_tokens, self.completion_tokens = usage.prompt_tokens, usage.completion_tokens

    def elapsed(self) -> float:
        return time.monotonic() - self.started


INFO = web.RequestKey("harvestkit_request_info", RequestInfo)


async def observed(events: AsyncGenerator[Event, None], info: RequestInfo) -> AsyncGenerator[Event, None]:
    """``events`` unchanged, noting the first event's time, the usage and an upstream failure.
    Closing this generator closes ``events`` at once."""
    async with contextlib.aclosing(events):
        try:
            async for event in events:
                if info.first_chunk is None:
                    info.first_chunk = info.elapsed()
                if isinstance(event, Usage):
                    info.usage(event)
                yield event
        except ClientError as error:
            info.upstream_error = type(error).__name__
            info.error_message = str(error)
            raise


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else str(round(seconds * 1000))


class AccessLogger(AbstractAccessLogger):
    """One line per request: id, peer, key name, method, path (no query string), status,
    model, tokens in/out, first-chunk and total milliseconds, bytes sent.

    Never a header value, so no key, cookie or Authorization can reach the log; every field is
    escaped, so a path like ``/v1/models/x%0d%0aINFO...`` stays on its own line."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        info = request.get(INFO)
        if info is None:  # a request aiohttp refused before any handler ran
            info = RequestInfo(request_id_for(None), 0.0)
        status = info.status if info.status is not None else response.status
        fields = [
            info.id,
            request.remote,
            info.key_name,
            request.method,
            request.path,
            status,
            f"{info.provider}/{info.model}" if info.provider and info.model else info.model,
            info.prompt_tokens,
            info.completion_tokens,
            _ms(info.first_chunk),
            _ms(time),
            response.body_length,
        ]
        self.logger.info(
            "%s %s key=%s \"%s %s\" %s model=%s tokens=%s/%s first=%sms total=%sms bytes=%s",
            *(escape(f) for f in fields),
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


CANCELLED = 499  # nginx's "client closed request", for requests the client left


def status_of(error: BaseException) -> int:
    """The status a request that raised ``error`` ended with, for the log and the metrics."""
    if isinstance(error, (StoreUnavailable, StoreTimeout)):
        return 503
    if isinstance(error, (asyncio.CancelledError, ConnectionError)):
        return CANCELLED
    if isinstance(error, web.HTTPException):
        return error.status
    return 500
