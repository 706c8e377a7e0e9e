"""Session pools, the pure part: members, rate-limit budgets, cooldowns and the choice of a session.

A pool is several sessions of one site: each member is a profile (an account, its own browser
profile and cached record) used through the proxy it was harvested with. For each request the
pool picks a member that is fresh and not cooling down; among those, the one with the most
rate-limit budget left (the ``x-ratelimit-*`` headers of its last response, in steps of
:data:`BAND`), then the one used longest ago, then the first in the pool's order. A sticky key (a conversation) keeps the member
it got while that member can serve. Nothing here does I/O; the time is always passed in
(:mod:`.session_pool` adds the state, the store and the locks).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from harvestkit.cache import SessionRecord
from harvestkit.cache.record import check_name

from .errors import _seconds  # a finite float, or None

__all__ = [
    "BAND",
    "Budget",
    "Candidate",
    "Limit",
    "Member",
    "PROXY_SCHEMES",
    "bound_to",
    "choose",
    "parse_limits",
    "parse_reset",
    "proxy_host",
    "proxy_identity",
]

PROXY_SCHEMES = ("http", "https", "socks4", "socks4a", "socks5", "socks5h")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_PREFIX = "x-ratelimit-"


def _proxy_parts(proxy: str) -> Any:
    parts = urlsplit(proxy)
    if parts.scheme.lower() not in PROXY_SCHEMES or not parts.hostname:
        raise ValueError(f"not a proxy URL: use scheme://[user:password@]host:port with a scheme of {', '.join(PROXY_SCHEMES)}")
    return parts


def proxy_identity(proxy: str | None) -> str | None:
    """What binds a session to its proxy: scheme, user, host and port, never the password."""
    if not proxy:
        return None
    parts = urlsplit(proxy)
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme.lower()}://{user}{(parts.hostname or '').lower()}{port}"


def proxy_host(proxy: str | None) -> str | None:
    """``host:port`` of a proxy, without scheme or credentials (for status and metrics)."""
    if not proxy:
        return None
    parts = urlsplit(proxy)
    return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname


@dataclass(frozen=True)
class Member:
    """One session of a pool: a profile, and the proxy it is harvested and always used through
    (None: the client's proxy setting, as for a session outside any pool)."""

    profile: str
    proxy: str | None = None

    def __post_init__(self) -> None:
        check_name("profile", self.profile)
        if self.proxy is not None:
            _proxy_parts(self.proxy)

    @property
    def label(self) -> str:
        """``profile`` or ``profile@host:port``: safe to show."""
        host = proxy_host(self.proxy)
        return f"{self.profile}@{host}" if host else self.profile

    def __repr__(self) -> str:
        return f"Member({self.label!r})"


def bound_to(record: SessionRecord, member: Member) -> bool:
    """Whether ``record`` may be used as ``member``: a member with a proxy uses only a session
    harvested through that proxy (a clearance is bound to its IP and browser)."""
    return member.proxy is None or proxy_identity(record.proxy) == proxy_identity(member.proxy)


def parse_reset(value: str, now: float) -> float | None:
    """A reset header as an epoch time: float seconds (Cerebras), a duration such as ``6m0s`` or
    ``250ms`` (OpenAI), or an epoch time already; None when unreadable."""
    text = value.strip().lower()
    try:
        seconds = float(text)
    except ValueError:
        parts = _DURATION_PART.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            return None
        scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
        seconds = sum(float(n) * scale[u] for n, u in parts)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds if seconds > 1e9 else now + seconds


@dataclass(frozen=True)
class Limit:
    """One rate-limit window (``tokens-minute``, ``requests-day``...) as last reported."""

    remaining: float
    limit: float | None = None
    reset_at: float | None = None  # epoch seconds: the window is whole again then

    def left(self, now: float) -> float:
        """The share of the window left (1.0 once it reset, or when the size is unknown and
        something remains)."""
        if self.reset_at is not None and now >= self.reset_at:
            return 1.0
        if self.limit:
            return max(0.0, min(1.0, self.remaining / self.limit))
        return 1.0 if self.remaining > 0 else 0.0


def parse_limits(headers: Mapping[str, str], now: float) -> dict[str, Limit]:
    """The windows named by ``x-ratelimit-remaining-<name>`` (with their ``-limit-`` and
    ``-reset-`` companions), by name; {} when the response carries none."""
    lower = {str(k).lower(): str(v) for k, v in headers.items() if str(k).lower().startswith(_PREFIX)}
    limits = {}
    for name, value in lower.items():
        if not name.startswith(_PREFIX + "remaining-"):
            continue
        window = name[len(_PREFIX + "remaining-") :]
        remaining = _seconds(value)
        if remaining is None:
            continue
        reset = lower.get(f"{_PREFIX}reset-{window}")
        limits[window] = Limit(remaining, _seconds(lower.get(f"{_PREFIX}limit-{window}")),
                               None if reset is None else parse_reset(reset, now))  # fmt: skip
    return limits


@dataclass(frozen=True)
class Budget:
    """What is known of one member's rate limits: the windows of its latest response, and until
    when it cools down (after a 429, or a failed re-harvest)."""

    limits: dict[str, Limit] = field(default_factory=dict)
    observed_at: float = 0.0
    cooling_until: float = 0.0
    reason: str = ""  # why it cools down: "rate limited", "harvest failed: ..."

    def left(self, now: float) -> float:
        """The tightest window's share left (1.0 when nothing is known)."""
        return min((limit.left(now) for limit in self.limits.values()), default=1.0)

    def free_at(self, now: float) -> float:
        """When it can serve again: now, the end of its cooldown, or the reset of a window it
        used up."""
        spent = [l.reset_at for l in self.limits.values() if l.remaining <= 0 and l.reset_at is not None and l.reset_at > now]
        return max([now, self.cooling_until, *spent])

    def observed(self, limits: dict[str, Limit], now: float) -> Budget:
        return Budget(limits, now, self.cooling_until, self.reason) if now >= self.observed_at else self

    def cooled(self, until: float, reason: str) -> Budget:
        return self if until <= self.cooling_until else Budget(self.limits, self.observed_at, until, reason)

    def merged(self, other: Budget) -> Budget:
        """Both views in one: the later observation's windows, the later cooldown."""
        newer = other if other.observed_at > self.observed_at else self
        cooling = max((self, other), key=lambda b: b.cooling_until)
        return Budget(newer.limits, newer.observed_at, cooling.cooling_until, cooling.reason)

    def to_dict(self) -> dict[str, Any]:
        return {
            "limits": {name: [l.remaining, l.limit, l.reset_at] for name, l in self.limits.items()},
            "observed_at": self.observed_at,
            "cooling_until": self.cooling_until,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Budget:
        """The stored form back; anything unreadable reads as nothing known."""
        try:
            limits = {str(name): Limit(float(r), None if l is None else float(l), None if t is None else float(t))
                      for name, (r, l, t) in dict(data.get("limits") or {}).items()}  # fmt: skip
            return cls(limits, float(data.get("observed_at", 0.0)), float(data.get("cooling_until", 0.0)),
                       str(data.get("reason", "")))  # fmt: skip
        except (AttributeError, TypeError, ValueError):
            return cls()


@dataclass(frozen=True)
class Candidate:
    """One member as the choice sees it."""

    member: Member
    fresh: bool  # a cached, unexpired session bound to its proxy
    budget: Budget = field(default_factory=Budget)
    last_used: float = 0.0


BAND = 0.1  # budgets this close count as equal, so concurrent requests spread instead of piling onto one


def choose(
    candidates: Sequence[Candidate],
    now: float,
    *,
    exclude: Iterable[Member] = (),
    sticky: Member | None = None,
    band: float = BAND,
) -> tuple[Candidate | None, float | None]:
    """The member to use, and ``None``; or ``None`` and when the first member frees up (``None``
    when every member is excluded without a cooldown ending).

    Free members only (not excluded, not cooling down, no window used up). ``sticky``, if free
    and fresh, wins. Otherwise a fresh member: most budget left (in steps of ``band``: 0.93 and
    0.97 are a tie, 0.85 is less), then used longest ago, then pool order. Otherwise a free member
    without a fresh session (the caller harvests it)."""
    excluded = set(exclude)
    free = [c for c in candidates if c.member not in excluded and c.budget.free_at(now) <= now]
    fresh = [c for c in free if c.fresh]
    for candidate in fresh:
        if candidate.member == sticky:
            return candidate, None
    if fresh:
        order = {c.member: i for i, c in enumerate(candidates)}

        def rank(c: Candidate) -> tuple[float, float, int]:
            left = c.budget.left(now)
            return (math.floor(left / band + 1e-9) if band > 0 else left), -c.last_used, -order[c.member]

        return max(fresh, key=rank), None
    if free:
        return free[0], None
    waits = [c.budget.free_at(now) for c in candidates if c.budget.free_at(now) > now]
    return None, min(waits, default=None)
