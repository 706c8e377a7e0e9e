"""The pools on ``/metrics``: per member, its state, budget left, cooldown and windows, no secret
(a member is named by site, profile and proxy ``host:port``)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from harvestkit.client.session_pool import MemberStatus, SessionPool
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["PoolCollector", "member_state"]

STATES = ("ready", "cooling", "failed", "stale")
LABELS = ["site", "profile", "proxy"]


def member_state(row: MemberStatus) -> str:
    """ready (fresh, free), cooling (after a 429 or a used-up window), failed, stale (to harvest)."""
    if row.cooling_for > 0:
        return "failed" if row.reason.startswith("failed") else "cooling"
    return "ready" if row.fresh else "stale"


class PoolCollector(Collector):
    """What each pool knows of its members at scrape time."""

    def __init__(self, pools: Sequence[SessionPool]) -> None:
        self.pools = list(pools)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        state = GaugeMetricFamily("harvestkit_pool_session_state", "1 for the member's state", labels=[*LABELS, "state"])
        budget = GaugeMetricFamily("harvestkit_pool_session_budget_ratio",
                                   "share of the tightest rate-limit window left (1: nothing known)", labels=LABELS)  # fmt: skip
        cooling = GaugeMetricFamily("harvestkit_pool_session_cooling_seconds", "seconds until the member can serve again",
                                    labels=LABELS)  # fmt: skip
        remaining = GaugeMetricFamily("harvestkit_pool_session_remaining", "what the last x-ratelimit-remaining-* said",
                                      labels=[*LABELS, "window"])  # fmt: skip
        now = time.time()
        for pool in self.pools:
            for row in pool.status(now):
                key = [row.site, row.profile, row.proxy or "none"]
                current = member_state(row)
                for name in STATES:
                    state.add_metric([*key, name], 1.0 if name == current else 0.0)
                budget.add_metric(key, row.budget_left)
                cooling.add_metric(key, row.cooling_for)
                for window, left in row.limits.items():
                    remaining.add_metric([*key, window], left)
        yield from (state, budget, cooling, remaining)
