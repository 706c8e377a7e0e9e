"""Failures as OpenAI error responses: the gateway's own, and the client's mapped to a status.

| client error                               | status | type                  |
|--------------------------------------------|--------|-----------------------|
| RateLimited                                | 429    | rate_limit_error      |
| ModelNotFound                              | 404    | invalid_request_error |
| BadRequest (upstream 400/422)              | 400    | invalid_request_error |
| AuthError, ChallengeError (no session)     | 503    | upstream_auth_error   |
| ConnectError, ServerError with 503         | 503    | upstream_unavailable  |
| Timeout, StreamTimeout                     | 504    | timeout_error         |
| anything else (5xx, broken stream, ...)    | 502    | upstream_error        |

An upstream auth failure is a 503 with ``x-should-retry: false``: the gateway works but has no
usable session until someone harvests or logs in, and retrying cannot fix that.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

from harvestkit.cache import StoreTimeout, StoreUnavailable
from harvestkit.client import (
    AuthError,
    BadRequest,
    ChallengeError,
    ClientError,
    ConnectError,
    HarvestkitError,
    ModelNotFound,
    RateLimited,
    ServerError,
    Timeout,
)

from .openai_format import error_body

__all__ = ["STORE_FAILURES", "GatewayError", "from_client_error", "mid_stream", "store_error"]

logger = logging.getLogger("harvestkit.gateway")

STORE_FAILURES = (StoreUnavailable, StoreTimeout)  # the session store failed the request: a 503


class GatewayError(HarvestkitError):
    """An error response: HTTP ``status`` and OpenAI's error fields (under harvestkit's one root)."""

    def __init__(
        self,
        status: int,
        message: str,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = dict(headers or {})

    def body(self) -> dict[str, object]:
        return error_body(self.message, self.type, self.code, self.param)


def _retry_headers(error: ClientError) -> dict[str, str]:
    """``retry-after`` (whole seconds, rounded up) and ``retry-after-ms`` from the upstream answer."""
    if isinstance(error, RateLimited) and error.retry_after is not None:
        seconds = error.retry_after
        return {"retry-after": str(max(1, math.ceil(seconds))), "retry-after-ms": str(round(seconds * 1000))}
    return {k: v for k, v in error.headers.items() if k in ("retry-after", "retry-after-ms")}


def from_client_error(error: ClientError) -> GatewayError:
    """The response for a client error (its message is already redacted)."""
    message = str(error)
    if isinstance(error, RateLimited):
        return GatewayError(429, message, "rate_limit_error", error.code or "rate_limit_exceeded",
                            headers=_retry_headers(error))  # fmt: skip
    if isinstance(error, ModelNotFound):
        return GatewayError(404, message, "invalid_request_error", "model_not_found", "model")
    if isinstance(error, BadRequest) and error.status_code in (None, 400, 422):
        return GatewayError(400, message, "invalid_request_error", error.code, error.param)
    if isinstance(error, (AuthError, ChallengeError)):
        return GatewayError(
            503,
            f"the gateway has no usable {error.provider or 'upstream'} session: {message}",
            "upstream_auth_error",
            "upstream_session_unusable",
            headers={"x-should-retry": "false"},
        )
    if isinstance(error, Timeout):
        return GatewayError(504, message, "timeout_error", "upstream_timeout")
    if isinstance(error, ConnectError) or (isinstance(error, ServerError) and error.status_code == 503):
        return GatewayError(503, message, "upstream_unavailable", "upstream_unavailable",
                            headers=_retry_headers(error))  # fmt: skip
    return GatewayError(502, message, "upstream_error", error.code or "bad_gateway")


def store_error(error: StoreUnavailable | StoreTimeout) -> GatewayError:
    """The response when the shared session store failed the request: a 503 worth retrying soon
    (the store reconnects by itself), its message naming the store without its password."""
    return GatewayError(503, str(error), "server_error", "session_store_unavailable", headers={"retry-after": "1"})


def mid_stream(error: Exception, model: str, sent_as: str) -> GatewayError:
    """The failure that ended a stream after its first event, logged: a client error keeps its
    status, anything else is the gateway's own 500."""
    if isinstance(error, ClientError):
        logger.warning("%s: sent as %s: %s", model, sent_as, error)
        return from_client_error(error)
    logger.error("%s: failed mid-stream", model, exc_info=error)
    return GatewayError(500, "the gateway failed mid-stream", "server_error", "internal_error")
