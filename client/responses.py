"""Mapping error responses and in-band stream errors onto the client's error tree (pure)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .errors import (
    _MAX_MESSAGE,
    AuthError,
    AuthExpired,
    BadRequest,
    ChallengeError,
    ClientError,
    MissingCredentials,
    ModelNotFound,
    ProtocolError,
    RateLimited,
    ServerError,
    StreamBroken,
    Timeout,
    _readable,
    safe_headers,
)

__all__ = ["error_from_body", "error_from_response", "html_summary", "is_challenge_page"]

_CHALLENGE_MARKERS = (
    "Just a moment...",
    "Attention Required",
    "cf-please-wait",
    "challenge-platform",
    "cf_chl_opt",
)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def is_challenge_page(text: str, headers: Mapping[str, str] | None = None) -> bool:
    """True when ``text`` (a response body) is a Cloudflare challenge / block page."""
    for name, value in (headers or {}).items():
        if str(name).lower() == "cf-mitigated" and "challenge" in str(value).lower():
            return True
    head = text.lstrip()[:1]
    return head == "<" and any(marker in text for marker in _CHALLENGE_MARKERS)


def html_summary(text: str) -> str | None:
    """``'an HTML page titled ...'`` if ``text`` is HTML, else ``None``."""
    if text.lstrip()[:1] != "<":
        return None
    title = _TITLE.search(text)
    name = " ".join(title.group(1).split())[:80] if title else ""
    return f"an HTML page titled {name!r}" if name else "an HTML page"


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # FastAPI 422: [{"loc": [...], "msg": "..."}]
        return "; ".join(_as_text(v.get("msg", v) if isinstance(v, dict) else v) for v in value)
    try:
        return "" if value is None else json.dumps(value, ensure_ascii=False)[:_MAX_MESSAGE]
    except (ValueError, RecursionError):
        return "(unreadable)"


def _opt_str(value: Any) -> str | None:
    return None if value is None or isinstance(value, (dict, list)) else str(value)


def _fields(data: Any) -> tuple[str, str | None, str | None, str | None, int | None]:
    """(message, code, type, param, status) from a JSON error body, wrapped or not."""
    if not isinstance(data, dict):
        return _as_text(data), None, None, None, None
    inner = data.get("error")
    if isinstance(inner, dict):
        merged = {**data, **inner}
    else:
        merged = dict(data)
        if inner is not None and inner is not True:
            merged.setdefault("message", inner)
    message = next(
        (merged[k] for k in ("message", "detail", "errorText", "msg") if merged.get(k)), ""
    )
    status = next(
        (merged[k] for k in ("status_code", "status") if type(merged.get(k)) is int), None
    )
    if status is None and type(merged.get("code")) is int and 400 <= merged["code"] <= 599:
        status = merged["code"]  # OpenAI-style bodies whose code is the HTTP status
    return (
        _as_text(message),
        _opt_str(merged.get("code")),
        _opt_str(merged.get("type")),
        _opt_str(merged.get("param")),
        status,
    )


def _classify(
    status: int | None, code: str, kind: str, param: str, message: str, default: type[ClientError]
) -> type[ClientError]:
    if code in ("wrong_api_key", "invalid_api_key") or status == 401:
        return AuthExpired
    if status == 403:
        return MissingCredentials if message.lower().startswith("not authenticated") else AuthError
    if code == "model_not_found" or (param == "model" and kind == "not_found_error"):
        return ModelNotFound
    if (
        status == 429
        or code.endswith("quota_exceeded")
        or code == "queue_exceeded"
        or kind in ("too_many_requests_error", "rate_limit_error")
    ):
        return RateLimited
    if status == 408:
        return Timeout
    if status is not None and 400 <= status < 500:
        return BadRequest
    if status is not None and status >= 500:
        return ServerError
    return default


def error_from_body(
    status: int | None,
    data: Any,
    provider: str,
    *,
    headers: Mapping[str, str] | None = None,
    text: str = "",
    default: type[ClientError] = StreamBroken,
) -> ClientError:
    """Map a decoded JSON error body (or an in-band stream error) to the error tree.

    ``status`` may be ``None`` for an error reported inside a stream; then a status or code in
    the body decides, else ``default`` (``StreamBroken`` carrying ``text``, the text so far).
    """
    message, code, kind, param, body_status = _fields(data)
    status = status if status is not None else body_status
    cls = _classify(
        status, (code or "").lower(), (kind or "").lower(), (param or "").lower(), message, default
    )
    kwargs: dict[str, Any] = {
        "status_code": status,
        "code": code,
        "type": kind,
        "param": param,
        "provider": provider,
        "headers": headers,
    }
    if issubclass(cls, StreamBroken):
        kwargs["text"] = text
    return cls(message or f"the service reported an error: {_readable(cls)}", **kwargs)


def error_from_response(
    status: int, headers: Mapping[str, str], body: bytes, provider: str
) -> ClientError:
    """Map an HTTP error response to the error tree (pure: no I/O, never raises)."""
    text = body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else str(body)
    kept = safe_headers(headers)
    common: dict[str, Any] = {"status_code": status, "provider": provider, "headers": kept}
    if is_challenge_page(text, headers):
        return ChallengeError("blocked by a Cloudflare challenge page", **common)
    if not text.strip():
        if status == 400:
            return BadRequest(
                "empty 400 response: the model may be unknown or the request invalid",
                hint="Check the model id against the provider's live model list.",
                **common,
            )
        message = "empty response body"
    else:
        html = html_summary(text)
        if html is not None:
            message = f"expected JSON but got {html}"
        else:
            try:
                data = json.loads(text)
            except (ValueError, RecursionError):
                message = f"unexpected non-JSON response: {text.strip()[:120]}"
            else:
                return error_from_body(status, data, provider, headers=kept, default=ProtocolError)
    return _classify(status, "", "", "", "", ProtocolError)(message, **common)
