"""The client's error tree and the mapping of error responses onto it.

Every error keeps what the server said (``message``, ``code``, ``type``, ``param``), the HTTP
``status_code``, the ``provider`` and a safe subset of the response ``headers``.  Messages never
carry request headers, cookies or keys; anything key-like a server echoes back is redacted.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Mapping
from typing import Any

from harvestkit.cache.errors import HarvestkitError
from harvestkit.cache.redact import redact

__all__ = [
    "AuthError",
    "AuthExpired",
    "BadRequest",
    "ChallengeError",
    "ClientError",
    "ConnectError",
    "HarvestkitError",
    "MissingCredentials",
    "ModelNotFound",
    "ProtocolError",
    "RateLimited",
    "ServerError",
    "StreamBroken",
    "StreamTimeout",
    "Timeout",
    "parse_retry_after",
    "redact_text",
    "safe_headers",
]

_MAX_MESSAGE = 300
_SAFE_HEADERS = frozenset(("retry-after", "retry-after-ms", "x-should-retry", "x-request-id",
                           "cf-ray", "cf-mitigated", "content-type", "server"))  # fmt: skip


class ClientError(HarvestkitError):
    """Base of the client's errors; ``str(error)`` is a short sentence that says what to do."""

    hint = ""

    def __init__(
        self,
        message: str = "",
        *,
        status_code: int | None = None,
        code: str | None = None,
        type: str | None = None,
        param: str | None = None,
        provider: str | None = None,
        headers: Mapping[str, str] | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = _shorten(redact_text(message)) or _readable(self.__class__)
        self.status_code = status_code
        self.code = code
        self.type = type
        self.param = param
        self.provider = provider
        self.headers = safe_headers(headers or {})
        if hint is not None:
            self.hint = hint
        super().__init__(self._render())

    def _render(self) -> str:
        details = [f"HTTP {self.status_code}"] if self.status_code is not None else []
        if self.code:
            details.append(str(self.code))
        text = f"{self.provider}: " if self.provider else ""
        text += self.message.rstrip(". ")
        if details:
            text += f" ({', '.join(details)})"
        return f"{text}. {self.hint}" if self.hint else text


class AuthError(ClientError):
    """The credentials were refused."""

    hint = "Log in again in the browser and harvest a fresh session."


class MissingCredentials(AuthError):
    """No credentials were sent, or the session has none (e.g. logged out)."""

    hint = "Harvest a session first (log in in the browser)."


class AuthExpired(AuthError):
    """The credentials were valid once: the demo key or the session expired."""

    hint = "The session or demo key expired; harvest a fresh session."


class ChallengeError(ClientError):
    """Cloudflare answered with a challenge page instead of the site."""

    hint = (
        "Solve the challenge by harvesting again in the browser, and reuse the session with "
        "the same user agent, TLS fingerprint and IP."
    )


class RateLimited(ClientError):
    """Too many requests or tokens; ``retry_after`` (seconds) is given or read from ``headers``."""

    def __init__(
        self, message: str = "", *, retry_after: float | None = None, **kwargs: Any
    ) -> None:
        if retry_after is None:
            retry_after = parse_retry_after(kwargs.get("headers") or {})
        self.retry_after = retry_after
        if "hint" not in kwargs:
            kwargs["hint"] = (
                f"Retry in {retry_after:.1f} s."
                if retry_after is not None
                else "Wait a little and retry."
            )
        super().__init__(message, **kwargs)


class ModelNotFound(ClientError):
    """The model id is unknown to the service (or not available to this account)."""

    hint = "Check the id against the provider's live model list."


class BadRequest(ClientError):
    """The service rejected the request as invalid."""


class ServerError(ClientError):
    """The service failed (5xx)."""

    hint = "Retry later."


class StreamBroken(ClientError):
    """The stream failed or was cut mid-way; ``text`` holds the text received before that."""

    hint = "Retry the request."

    def __init__(
        self,
        message: str = "",
        *,
        text: str = "",
        cause: BaseException | None = None,
        **kwargs: Any,
    ) -> None:
        self.text = text
        self.cause = cause
        super().__init__(message, **kwargs)
        if cause is not None:
            self.__cause__ = cause


class ProtocolError(StreamBroken):
    """The service sent something that is not the expected wire format."""

    hint = "The service may have changed its wire format; please report it."


class ConnectError(ClientError):
    """The connection could not be made (DNS, TCP, TLS, proxy)."""

    hint = "Check the network and the proxy."


class Timeout(ClientError):
    """The service did not answer in time."""

    hint = "Retry, or raise the timeout."


class StreamTimeout(StreamBroken, Timeout):
    """The stream went silent for longer than the idle timeout; ``text`` holds what came before."""

    hint = "Retry, or raise the idle timeout."


def _readable(cls: type[BaseException]) -> str:
    """``ServerError`` -> ``server error``: the default message of an error without one."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", cls.__name__).lower()


# --- secrets -------------------------------------------------------------------------------

_NAMED_SECRET = re.compile(
    r"(?i)\b(bearer\s+|basic\s+|(?:authorization|cookie|set-cookie|api[_-]?key|apikey|token|"
    r"access[_-]?token|cf_clearance|__cf_bm|_cfuvid|[\w.-]*session[\w.-]*|[\w.-]*csrf[\w.-]*)"
    r"[\"']?\s*[=:]\s*[\"']?(?:(?:bearer|basic)\s+)?)([^\s;,\"'&]{4,})"
)
_KEY_LIKE = re.compile(r"\b(?:csk|sk|pk|rk|key)-[A-Za-z0-9_\-]{8,}|\beyJ[\w\-]{8,}\.[\w\-.]+")


# After "name: " (a colon, no quote), a plain word is prose ("session: nothing cached"), not a value.
_PLAIN_WORD = re.compile(r"[a-z]{1,20}|[A-Z][a-z]{1,19}")


def _mask_named(match: re.Match[str]) -> str:
    prefix, value = match.group(1), match.group(2)
    prose = (
        ":" in prefix
        and "=" not in prefix
        and prefix.rstrip()[-1:] not in "\"'"
        and not re.search(r"(?i)\b(?:bearer|basic)\s", prefix)
        and _PLAIN_WORD.fullmatch(value)
    )
    return match.group(0) if prose else prefix + redact(value)


def redact_text(text: str) -> str:
    """Mask API keys, bearer tokens, JWTs and cookie/key values found in ``text`` (e.g. a
    server message echoing a key) with the project's one masking rule (``cache.redact``)."""
    text = _NAMED_SECRET.sub(_mask_named, text)
    return _KEY_LIKE.sub(lambda m: redact(m.group(0)), text)


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def safe_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The response headers worth keeping on an error (lower-cased), never cookies."""
    kept = {}
    for name, value in headers.items():
        name = str(name).lower()
        if name in _SAFE_HEADERS or name.startswith("x-ratelimit-"):
            kept[name] = str(value)
    return kept


# --- response mapping ----------------------------------------------------------------------


def _seconds(value: str | None) -> float | None:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) else None


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait, from ``retry-after-ms``, ``retry-after`` (seconds or HTTP date) or
    Cerebras' ``x-ratelimit-reset-tokens-minute``; at least 0; ``None`` if absent. How long a
    retry may wait is the caller's setting (``Settings.max_retry_wait``), not capped here."""
    lower = {str(k).lower(): str(v).strip() for k, v in headers.items()}
    seconds = _seconds(lower.get("retry-after-ms"))
    if seconds is not None:
        seconds /= 1000
    elif "retry-after" in lower:
        seconds = _seconds(lower["retry-after"])
        if seconds is None:
            try:
                date = email.utils.parsedate_to_datetime(lower["retry-after"])
                seconds = date.timestamp() - (time.time() if now is None else now)
            except (TypeError, ValueError, IndexError, OverflowError):
                seconds = None
    if seconds is None:
        seconds = _seconds(lower.get("x-ratelimit-reset-tokens-minute"))
    if seconds is None:
        return None
    return max(seconds, 0.0)
