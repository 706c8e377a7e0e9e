"""How the client behaves: timeouts, retries, credentials policy, proxy and CA.

Defaults come from the environment once (``HARVESTKIT_PROXY``, ``HARVESTKIT_CA_BUNDLE``,
``HARVESTKIT_NO_HARVEST``). A :class:`~harvestkit.client.Client` holds one ``Settings``
(``client.with_options(...)`` derives another); the seeds' classes accept any field by keyword.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harvestkit.cache import SessionRecord, SessionStore, open_store

__all__ = ["SETTING_NAMES", "HarvestFn", "Settings"]

HarvestFn = Callable[..., Awaitable[SessionRecord]]
"""``await harvest(site, profile=..., proxy=..., cache=..., stale=...)`` returns the record it saved
to the cache; ``stale`` is the ``harvested_at`` of the refused record (see ``AuthCache.refresh``)."""

if TYPE_CHECKING:
    from .session_pool import SessionPool

_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    """Client settings; ``Settings.from_env()`` is the default of every provider."""

    connect_timeout: float = 10.0
    idle_timeout: float = 60.0  # longest silence between two chunks of a stream
    total_timeout: float | None = None  # whole request, stream included; None: unbounded
    max_retries: int = 2
    backoff_base: float = 0.5
    backoff_cap: float = 8.0
    max_retry_wait: float = 60.0  # longest server-requested wait (retry-after) honoured
    models_ttl: float = 600.0
    max_connections: int = 64  # concurrent transfers per provider per event loop; more wait
    profile: str = "default"
    allow_harvest: bool = True
    harvest: HarvestFn | None = None  # None: harvestkit.harvester.harvest, imported when needed
    cache: SessionStore | None = None  # None: open_store(), the store HARVESTKIT_STORE or the config names
    proxy: str | None = None  # overrides the proxy recorded at harvest
    ca_bundle: str | None = None
    pools: tuple[SessionPool, ...] = ()  # several sessions per site, one picked per request

    def __post_init__(self) -> None:
        if not self.pools:
            object.__setattr__(self, "pools", ())
            return
        from .session_pool import SessionPool

        pools = tuple(self.pools.values() if isinstance(self.pools, dict) else self.pools)
        for pool in pools:
            if not isinstance(pool, SessionPool):
                raise TypeError(f"pools must hold SessionPool objects, not {type(pool).__name__}")
        if len({pool.site for pool in pools}) != len(pools):
            raise ValueError("pools: one pool per site")
        object.__setattr__(self, "pools", pools)

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Settings with the proxy, CA bundle and harvest policy taken from the environment."""
        env: dict[str, Any] = {
            "proxy": os.environ.get("HARVESTKIT_PROXY") or None,
            "ca_bundle": os.environ.get("HARVESTKIT_CA_BUNDLE") or None,
        }
        if os.environ.get("HARVESTKIT_NO_HARVEST", "").strip().lower() in _TRUE:
            env["allow_harvest"] = False
        return cls(**{**env, **overrides})

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes``; an unknown name raises ``TypeError`` naming the closest one."""
        from .options import unknown_keyword

        for name in changes:
            if name not in SETTING_NAMES:
                raise unknown_keyword(name, SETTING_NAMES, "Settings")
        return dataclasses.replace(self, **changes) if changes else self

    def with_overrides(self, kwargs: dict[str, Any]) -> Settings:
        """A copy with the fields named in ``kwargs`` replaced; those keys are removed from it."""
        names = {f.name for f in dataclasses.fields(self)}
        changes = {name: kwargs.pop(name) for name in list(kwargs) if name in names}
        return dataclasses.replace(self, **changes) if changes else self

    def auth_cache(self) -> SessionStore:
        """The session store to read and update credentials in (a Redis one is shared by the process)."""
        return self.cache if self.cache is not None else open_store()


SETTING_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Settings))
