"""A session pool at run time: the members' budgets and cooldowns, shared through the store.

One :class:`SessionPool` per site is given to a client (``Client(pools=[SessionPool(...)])``,
or ``[pools.<site>]`` in the config file for the gateway and the command). It keeps what this
process saw, and shares it through the session store the calls use: each member's budget and
cooldown live in its record (``extra["pool"]``), written at once on a 429 or a failure and at
most every ``share_interval`` seconds otherwise, and read back as often. So every process (and
host) on one store avoids a session another one saw rate-limited, within ``share_interval``.
Sticky keys are remembered in this process only (the newest ``sticky_size``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from harvestkit.cache import SessionRecord, SessionStore
from harvestkit.cache.errors import HarvestkitError

from .errors import RateLimited
from .pool import Budget, Candidate, Member, bound_to, choose, parse_limits, proxy_host

__all__ = ["MemberStatus", "PoolExhausted", "SessionPool", "pools_from_config"]

logger = logging.getLogger("harvestkit.client.pool")
EXTRA_KEY = "pool"


class PoolExhausted(RateLimited):
    """No member of the pool can serve now: each is rate-limited or failing; ``retry_after`` is
    when the first one frees up (None: none will by itself)."""


@dataclass(frozen=True)
class MemberStatus:
    """One member as ``harvestkit status`` and ``/metrics`` show it (no secret in it)."""

    site: str
    profile: str
    proxy: str | None  # host:port only
    fresh: bool
    expires_in: float | None
    cooling_for: float  # seconds left of its cooldown (0: none)
    reason: str
    budget_left: float  # the tightest window's share left, 0..1
    limits: dict[str, float]  # window -> remaining

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _fresh(record: SessionRecord | None, member: Member, now: float) -> bool:
    if record is None or not bound_to(record, member):
        return False
    return record.expires_at is None or record.expires_at > now


class SessionPool:
    """The sessions of one ``site``: ``members`` (profiles, or :class:`Member` with a proxy).

    ``sticky``: a request's sticky key (its ``user``) keeps the member it first got while that
    member can serve. ``default_cooldown``: how long a 429 without reset headers cools a member;
    ``failure_cooldown``: how long a member whose re-harvest failed is left aside."""

    def __init__(
        self,
        site: str,
        members: Iterable[Member | str],
        *,
        sticky: bool = True,
        share_interval: float = 1.0,
        default_cooldown: float = 10.0,
        failure_cooldown: float = 60.0,
        sticky_size: int = 10_000,
    ) -> None:
        self.site = site
        self.members = tuple(dict.fromkeys(m if isinstance(m, Member) else Member(m) for m in members))
        if not self.members:
            raise ValueError(f"the {site} pool has no members")
        profiles = [m.profile for m in self.members]
        if len(set(profiles)) != len(profiles):
            raise ValueError(f"the {site} pool names a profile twice: each member needs its own profile")
        self.sticky = sticky
        self.share_interval = share_interval
        self.default_cooldown = default_cooldown
        self.failure_cooldown = failure_cooldown
        self.sticky_size = sticky_size
        self.budgets: dict[Member, Budget] = {m: Budget() for m in self.members}
        self.records: dict[Member, SessionRecord | None] = {}
        self.last_used: dict[Member, float] = {}
        self.stuck: OrderedDict[str, Member] = OrderedDict()
        self._read_at = float("-inf")
        self._shared_at: dict[Member, float] = {}

    def __repr__(self) -> str:
        return f"SessionPool({self.site!r}, {[m.label for m in self.members]!r})"

    # -- the store ---------------------------------------------------------------------------------
    async def sync(self, store: SessionStore, *, force: bool = False) -> None:
        """Read every member's record (freshness, the budget others shared), at most every
        ``share_interval`` unless ``force``. A store that fails keeps the last view."""
        now = time.monotonic()
        if not force and now - self._read_at < self.share_interval:
            return
        self._read_at = now
        for member in self.members:
            try:
                record = await store.get(self.site, member.profile)
            except HarvestkitError as exc:
                logger.warning("%s pool: cannot read %s (%s); using what this process knows", self.site, member.label, exc)
                return
            self.records[member] = record
            shared = Budget.from_dict(record.extra.get(EXTRA_KEY)) if record is not None else Budget()
            budget = self.budgets[member].merged(shared)
            failed_at = budget.cooling_until - self.failure_cooldown
            if record is not None and budget.reason.startswith("failed") and record.harvested_at > failed_at:
                budget = Budget(budget.limits, budget.observed_at)  # harvested since it failed
            self.budgets[member] = budget
            if record is not None and EXTRA_KEY not in record.extra and budget.cooling_until > time.time():
                await self._share(store, member, now_or_never=True)  # a harvest replaced the record: share again

    async def _share(self, store: SessionStore, member: Member, *, now_or_never: bool = False) -> None:
        """Write the member's budget into its record (merged with what is there)."""
        at = time.monotonic()
        if not now_or_never and at - self._shared_at.get(member, float("-inf")) < self.share_interval:
            return
        self._shared_at[member] = at
        budget = self.budgets[member]

        def merge(current: SessionRecord | None) -> SessionRecord | None:
            if current is None:
                return None
            mine = Budget.from_dict(current.extra.get(EXTRA_KEY)).merged(budget)
            return dataclasses.replace(current, extra={**current.extra, EXTRA_KEY: mine.to_dict()})

        try:
            stored = await store.update(self.site, merge, member.profile)
        except HarvestkitError as exc:
            logger.warning("%s pool: cannot share the budget of %s (%s)", self.site, member.label, exc)
            return
        if stored is not None:
            self.records[member] = stored

    # -- choosing ----------------------------------------------------------------------------------
    def candidates(self, now: float) -> list[Candidate]:
        return [Candidate(m, _fresh(self.records.get(m), m, now), self.budgets[m], self.last_used.get(m, 0.0))
                for m in self.members]  # fmt: skip

    async def pick(self, store: SessionStore, *, key: str | None = None, exclude: Iterable[Member] = ()) -> Member:
        """The member for the next attempt (``key``: a conversation's sticky key; ``exclude``:
        the members this call already tried); :class:`PoolExhausted` (``retry_after``: when the
        first one frees up) when none can serve."""
        await self.sync(store)
        now = time.time()
        sticky = self.stuck.get(key) if key is not None and self.sticky else None
        chosen, free_at = choose(self.candidates(now), now, exclude=exclude, sticky=sticky)
        if chosen is None:
            wait = None if free_at is None else max(free_at - now, 0.0)
            when = f"the first frees up in {wait:.1f} s" if wait is not None else "none frees up by itself"
            raise PoolExhausted(f"every session of the {self.site} pool is rate-limited or failing; {when}",
                              retry_after=wait, status_code=429, provider=self.site)  # fmt: skip
        self.last_used[chosen.member] = now
        if key is not None and self.sticky:
            self.stuck[key] = chosen.member
            self.stuck.move_to_end(key)
            while len(self.stuck) > self.sticky_size:
                self.stuck.popitem(last=False)
        return chosen.member

    # -- what responses say ------------------------------------------------------------------------
    async def observe(self, store: SessionStore, member: Member, headers: Mapping[str, str]) -> None:
        """A response's ``x-ratelimit-*`` windows become the member's budget."""
        now = time.time()
        limits = parse_limits(headers, now)
        if limits:
            self.budgets[member] = self.budgets[member].observed(limits, now)
            await self._share(store, member)

    async def cool_down(self, store: SessionStore, member: Member, retry_after: float | None, headers: Mapping[str, str]) -> float:
        """A 429: the member cools down until its reset (``retry_after``, else a window it used
        up, else ``default_cooldown``); shared at once. Returns the end of the cooldown."""
        now = time.time()
        limits = parse_limits(headers, now)
        budget = self.budgets[member].observed(limits, now) if limits else self.budgets[member]
        if retry_after is not None:
            until = now + retry_after
        else:
            until = budget.free_at(now) if budget.free_at(now) > now else now + self.default_cooldown
        self.budgets[member] = budget.cooled(until, "rate limited")
        await self._share(store, member, now_or_never=True)
        return until

    async def failed(self, store: SessionStore, member: Member, error: BaseException) -> None:
        """A member whose session could not be had or recovered is left aside for ``failure_cooldown``."""
        reason = f"failed: {type(error).__name__}"
        self.budgets[member] = self.budgets[member].cooled(time.time() + self.failure_cooldown, reason)
        await self._share(store, member, now_or_never=True)

    def failures(self, now: float | None = None) -> str:
        """``profile: reason`` of each member set aside after a failure."""
        now = time.time() if now is None else now
        return ", ".join(f"{m.label}: {b.reason}" for m, b in self.budgets.items() if b.reason.startswith("failed") and b.cooling_until > now)

    def rate_limited(self, now: float | None = None) -> bool:
        """Whether some member cools down after a 429 (rather than only failing ones)."""
        now = time.time() if now is None else now
        return any(b.free_at(now) > now and not b.reason.startswith("failed") for b in self.budgets.values())

    # -- showing -----------------------------------------------------------------------------------
    def status(self, now: float | None = None) -> list[MemberStatus]:
        """Each member's state, from the last :meth:`sync` and this process's observations."""
        now = time.time() if now is None else now
        rows = []
        for member in self.members:
            record, budget = self.records.get(member), self.budgets[member]
            expires = None if record is None or record.expires_at is None else record.expires_at - now
            cooling = max(budget.free_at(now) - now, 0.0)
            rows.append(MemberStatus(
                self.site, member.profile, proxy_host(member.proxy or (record.proxy if record else None)),
                _fresh(record, member, now), expires, cooling, budget.reason if cooling else "",
                budget.left(now), {name: limit.remaining for name, limit in budget.limits.items()},
            ))  # fmt: skip
        return rows


def pools_from_config(specs: Mapping[str, Any]) -> list[SessionPool]:
    """The pools of a config file's ``[pools.<site>]`` tables (:class:`~harvestkit.common.config.PoolSpec`)."""
    return [SessionPool(spec.site, [Member(profile, proxy) for profile, proxy in spec.members], sticky=spec.sticky)
            for spec in specs.values()]  # fmt: skip
