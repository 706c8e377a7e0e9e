"""What the gateway records about each request: its id and the access-log line.

Every request gets a :class:`RequestInfo` (``request[INFO]``) from the outermost middleware; the
handlers fill in the key name, provider, model and the provider's stream, and the access logger
and the metrics read it when the request ends. The first chunk's time, the usage and an upstream
failure come from the stream itself (its ``first_event_at``, ``usage`` and ``error``), so
observing costs no layer between the provider and the SSE write loop.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from dataclasses import dataclass

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from harvestkit.client import ChatStream, ClientError

from .errors import STORE_FAILURES

__all__ = ["INFO", "AccessLogger", "RequestInfo", "escape", "request_id_for"]

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
    error_message: str | None = None
    status: int | None = None
    stream: ChatStream | None = None  # the provider's: first event, usage and failure come from it

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def first_chunk(self) -> float | None:
        """Seconds from the start to the first upstream event."""
        at = self.stream.first_event_at if self.stream is not None else None
        return None if at is None else at - self.started

    @property
    def prompt_tokens(self) -> int | None:
        usage = self.stream.usage if self.stream is not None else None
        return None if usage is None else usage.prompt_tokens

    @property
    def completion_tokens(self) -> int | None:
        usage = self.stream.usage if self.stream is not None else None
        return None if usage is None else usage.completion_tokens

    @property
    def upstream_failure(self) -> ClientError | None:
        """The client error that failed the upstream call, if one did."""
        error = self.stream.error if self.stream is not None else None
        return error if isinstance(error, ClientError) else None

    @property
    def upstream_error(self) -> str | None:
        """The class name of :attr:`upstream_failure`."""
        failure = self.upstream_failure
        return None if failure is None else type(failure).__name__


INFO = web.RequestKey("harvestkit_request_info", RequestInfo)


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
    if isinstance(error, STORE_FAILURES):
        return 503
    if isinstance(error, (asyncio.CancelledError, ConnectionError)):
        return CANCELLED
    if isinstance(error, web.HTTPException):
        return error.status
    return 500
