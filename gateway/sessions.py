"""Which providers have a usable session now: ``GET /ready`` and the status page read this.

Usable means cached and not expired (and, for Cerebras, holding the demo key). A harvest could
still make a cold provider work, but readiness answers "can a request be served without one".
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from harvestkit.client import Settings
from harvestkit.client.pool import Member, bound_to
from harvestkit.client.provider import Provider
from harvestkit.client.pooled import pool_for

__all__ = ["SessionState", "session_states"]


@dataclass(frozen=True)
class SessionState:
    """One provider's session as readiness sees it (no secret in it)."""

    provider: str
    profile: str
    ready: bool
    detail: str
    age: float | None = None
    expires_in: float | None = None
    fresh: bool = False
    cookies: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {key: round(value) if isinstance(value, float) else value for key, value in asdict(self).items()}


async def _state(name: str, cls: type[Provider], settings: Settings, member: Member | None = None) -> SessionState:
    cache = settings.auth_cache()
    profile = settings.profile if member is None else member.profile
    harvest = f"harvestkit harvest {cls.site}" + ("" if member is None else f" --profile {profile}")
    try:
        record = await cache.get(cls.site, profile)
    except Exception as exc:  # noqa: BLE001 - e.g. CachePermissionError, whose message says what to run
        return SessionState(name, profile, False, f"the session cache cannot be read: {exc}")
    if record is None:
        return SessionState(name, profile, False, f"no session cached: run `{harvest}` on the gateway's host")
    if member is not None and not bound_to(record, member):
        return SessionState(name, profile, False, f"harvested through another proxy than the pool's: run `{harvest}`")
    now = time.time()
    age = now - record.harvested_at
    expires_in = None if record.expires_at is None else record.expires_at - now
    known = {"age": age, "expires_in": expires_in, "fresh": cache.is_fresh(record), "cookies": len(record.cookies)}
    if expires_in is not None and expires_in <= 0:
        return SessionState(name, profile, False,
                            f"the session expired {round(-expires_in)} s ago: run `harvestkit refresh`", **known)  # fmt: skip
    if cls.site == "cerebras" and not record.api_key:
        return SessionState(name, profile, False,
                            "signed out (no demo key): run `harvestkit login cerebras` once", **known)  # fmt: skip
    return SessionState(name, profile, True, "session usable", **known)


async def session_states(providers: Mapping[str, type[Provider]], options: Mapping[str, Mapping[str, Any]]) -> list[SessionState]:
    """Every provider's session state, each pool member's (``options``: the call options per provider)."""
    states = []
    for name, cls in providers.items():
        settings = (cls.settings or Settings.from_env()).with_overrides(dict(options.get(name, {})))
        pool = pool_for(settings.pools, cls.site)
        for member in pool.members if pool is not None else (None,):
            states.append(await _state(name, cls, settings, member))
    return states
