"""When and how long to wait before retrying a request that failed before its first chunk."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .errors import (
    ClientError,
    ConnectError,
    RateLimited,
    ServerError,
    Timeout,
    parse_retry_after,
)

__all__ = ["RetryPolicy", "is_retryable"]


def is_retryable(error: BaseException) -> bool:
    """429, 5xx, connection failures and timeouts are worth another try; nothing else is."""
    return isinstance(error, (RateLimited, ServerError, ConnectError, Timeout))


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; a server-requested wait wins, up to ``max_wait``
    (the one cap: the parsed ``retry-after`` itself is not clamped)."""

    max_retries: int = 2
    base: float = 0.5
    cap: float = 8.0
    max_wait: float = 60.0

    def delay(self, attempt: int, error: ClientError) -> float | None:
        """Seconds to wait before retry number ``attempt`` (1-based), or None to give up."""
        if attempt > self.max_retries or not is_retryable(error):
            return None
        if isinstance(error, RateLimited):
            requested = error.retry_after
        else:  # a 503 may ask for a wait too; rate-limit reset headers only matter on a 429
            asked = {k: v for k, v in error.headers.items() if k in ("retry-after", "retry-after-ms")}
            requested = parse_retry_after(asked)
        if requested is not None:
            return min(requested, self.max_wait)
        ceiling = min(self.cap, self.base * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)
