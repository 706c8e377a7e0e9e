"""What every handler of one gateway shares: keys, model catalog, call options, metrics, store."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from harvestkit.common.config import STREAM_FLUSH_MS

from .keys import Keys
from .metrics import Metrics
from .response_store import ResponseStore
from .routing import Catalog

__all__ = ["GATEWAY", "Gateway", "RecentError"]


@dataclass(frozen=True)
class RecentError:
    """One failed request, for the status page (the message is already redacted)."""

    at: float
    request_id: str
    provider: str | None
    status: int
    message: str


@dataclass
class Gateway:
    """One gateway's configuration and shared state."""

    catalog: Catalog
    keys: Keys = field(default_factory=Keys)
    call_options: dict[str, Any] = field(default_factory=dict)  # client keywords for every call
    provider_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # per provider, on top
    max_body: int = 8 * 1024 * 1024  # the largest request body accepted, in bytes
    aliases: dict[str, str] = field(default_factory=dict)  # user model aliases -> model ids
    cors_origins: list[str] = field(default_factory=list)
    metrics: Metrics = field(default_factory=Metrics)
    store: ResponseStore = field(default_factory=ResponseStore)
    recent_errors: deque[RecentError] = field(default_factory=lambda: deque(maxlen=20))
    summary: dict[str, Any] = field(default_factory=dict)  # the configuration in effect, no secrets
    started: float = field(default_factory=time.time)
    stream_flush: float = STREAM_FLUSH_MS / 1000  # seconds: at most one write per stream in this time

    def options_for(self, provider: str) -> dict[str, Any]:
        """The client keywords for a call to ``provider``."""
        return {**self.call_options, **self.provider_options.get(provider, {})}


GATEWAY = web.AppKey("gateway", Gateway)
