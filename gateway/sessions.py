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
from harvestkit.client.provider import Provider

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


async def _state(name: str, cls: type[Provider], options: Mapping[str, Any]) -> SessionState:
    settings = (cls.settings or Settings.from_env()).with_overrides(dict(options))
    cache = settings.auth_cache()
    try:
        record = await cache.get(cls.site, settings.profile)
    except Exception as exc:  # noqa: BLE001 - e.g. CachePermissionError, whose message says what to run
        return SessionState(name, settings.profile, False, f"the session cache cannot be read: {exc}")
    if record is None:
        return SessionState(name, settings.profile, False,
                            f"no session cached: run `harvestkit harvest {cls.site}` on the gateway's host")  # fmt: skip
    now = time.time()
    age = now - record.harvested_at
    expires_in = None if record.expires_at is None else record.expires_at - now
    known = {"age": age, "expires_in": expires_in, "fresh": cache.is_fresh(record), "cookies": len(record.cookies)}
    if expires_in is not None and expires_in <= 0:
        return SessionState(name, settings.profile, False,
                            f"the session expired {round(-expires_in)} s ago: run `harvestkit refresh`", **known)  # fmt: skip
    if cls.site == "cerebras" and not record.api_key:
        return SessionState(name, settings.profile, False,
                            "signed out (no demo key): run `harvestkit login cerebras` once", **known)  # fmt: skip
    return SessionState(name, settings.profile, True, "session usable", **known)


async def session_states(providers: Mapping[str, type[Provider]], options: Mapping[str, Mapping[str, Any]]) -> list[SessionState]:
    """Every provider's session state (``options``: the call options per provider)."""
    return [await _state(name, cls, options.get(name, {})) for name, cls in providers.items()]
