"""``GET /metrics``: the gateway's Prometheus metrics (prometheus-client, one registry per app).

Labels are bounded: ``model`` is the routed model (``unrouted`` when routing failed),
``endpoint`` the route's pattern (``unmatched`` for unknown paths), ``key`` the key's name,
never the key. Session freshness is read from the auth cache at every scrape.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence

from aiohttp import web
from harvestkit.cache import SessionRecord, SessionStore, open_store
from harvestkit.client.session_pool import SessionPool
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .observe import RequestInfo
from .pool_metrics import PoolCollector

__all__ = ["Metrics"]

LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class SessionCollector(Collector):
    """Per cached session: fresh (1/0), age and seconds until expiry."""

    def __init__(self, records: Callable[[], Iterable[tuple[SessionRecord, bool]]]) -> None:
        self.records = records

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["site", "profile"]
        fresh = GaugeMetricFamily("harvestkit_session_fresh", "1 when the cached session is fresh", labels=labels)
        age = GaugeMetricFamily("harvestkit_session_age_seconds", "seconds since the session was harvested", labels=labels)
        left = GaugeMetricFamily(
            "harvestkit_session_expires_in_seconds", "seconds until the session expires (negative: expired)", labels=labels
        )
        now = time.time()
        try:
            records = list(self.records())
        except Exception:  # noqa: BLE001 - e.g. a refused cache permission: no session gauges
            records = []
        for record, is_fresh in records:
            key = [record.site, record.profile]
            fresh.add_metric(key, 1.0 if is_fresh else 0.0)
            age.add_metric(key, now - record.harvested_at)
            if record.expires_at is not None:
                left.add_metric(key, record.expires_at - now)
        yield from (fresh, age, left)


class Metrics:
    """The counters and histograms one gateway updates."""

    def __init__(self, cache: Callable[[], SessionStore] = open_store, pools: Sequence[SessionPool] = ()) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "harvestkit_gateway_requests", "requests answered", ["endpoint", "provider", "model", "status", "key"], registry=r
        )
        self.tokens = Counter("harvestkit_gateway_tokens", "tokens by direction (in: prompt, out: completion)",
                              ["provider", "model", "direction"], registry=r)  # fmt: skip
        self.first_chunk = Histogram("harvestkit_gateway_first_chunk_seconds", "time to the first upstream event",
                                     ["provider"], buckets=LATENCY_BUCKETS, registry=r)  # fmt: skip
        self.duration = Histogram("harvestkit_gateway_request_seconds", "time to the end of the response",
                                  ["endpoint", "provider"], buckets=LATENCY_BUCKETS, registry=r)  # fmt: skip
        self.harvests = Counter("harvestkit_harvests", "harvests the gateway started, by outcome", ["site", "outcome"], registry=r)
        self.upstream_errors = Counter("harvestkit_upstream_errors", "upstream failures by error class",
                                       ["provider", "error"], registry=r)  # fmt: skip
        self._cache = cache

        def records() -> Iterator[tuple[SessionRecord, bool]]:
            store = self._cache()
            for record in store.list_sync():
                yield record, store.is_fresh(record)

        r.register(SessionCollector(records))
        if pools:
            r.register(PoolCollector(pools))

    def observe(self, info: RequestInfo, status: int) -> None:
        """Count one finished request."""
        provider = info.provider or "none"
        model = info.model if info.provider else "unrouted"
        self.requests.labels(info.endpoint, provider, model or "unrouted", str(status), info.key_name or "none").inc()
        self.duration.labels(info.endpoint, provider).observe(info.elapsed())
        if info.first_chunk is not None:
            self.first_chunk.labels(provider).observe(info.first_chunk)
        if info.prompt_tokens:
            self.tokens.labels(provider, model, "in").inc(info.prompt_tokens)
        if info.completion_tokens:
            self.tokens.labels(provider, model, "out").inc(info.completion_tokens)
        if info.upstream_error:
            self.upstream_errors.labels(provider, info.upstream_error).inc()

    def harvest(self, site: str, outcome: str) -> None:
        self.harvests.labels(site, outcome).inc()

    def response(self) -> web.Response:
        response = web.Response(body=generate_latest(self.registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response
