"""Persistent browser profiles, one per (site, profile), and the lock that gives each one browser.

Layout, beside the auth cache (`$HARVESTKIT_HOME`, else platformdirs' user data dir)::

    browser/<site>/<profile>/              Chromium's user data dir (0700): sign-ins survive here
    browser/<site>/<profile>.lock          held while a browser runs on that profile
    browser/<site>/<profile>.lock.holder   pid of the holder (see harvestkit.cache.locks)

A directory that grants group or others any permission is refused, as the cache's are.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from harvestkit.cache import CacheLockTimeout
from harvestkit.cache.locks import CacheLock
from harvestkit.cache.paths import default_root, ensure_private_dir
from harvestkit.cache.record import check_name

from .errors import ProfileInUse


def browser_root() -> Path:
    """Where the browser profiles live."""
    return default_root().parent / "browser"


def profile_dir(site: str, profile: str, *, create: bool = True) -> Path:
    """Chromium's user data dir for (site, profile), created 0700 if missing and `create`."""
    root = browser_root()
    path = root / check_name("site", site) / check_name("profile", profile)
    if create:
        for level in (root, path.parent, path):
            ensure_private_dir(level)
    return path


def _lock_path(site: str, profile: str) -> Path:
    path = profile_dir(site, profile)
    return path.with_name(f"{profile}.lock")


@contextlib.asynccontextmanager
async def profile_locks(keys: Sequence[tuple[str, str]], deadline: float) -> AsyncIterator[None]:
    """Hold the locks of every (site, profile) in `keys`, taken in sorted order by `deadline`.

    Raises `ProfileInUse` naming the holder when one cannot be taken in time.
    """
    held: list[CacheLock] = []
    started = time.monotonic()
    try:
        for site, profile in sorted(set(keys)):
            path = await asyncio.to_thread(_lock_path, site, profile)
            lock = CacheLock(path, max(deadline - time.monotonic(), 0.0))
            try:
                await lock.acquire_async()
            except CacheLockTimeout as exc:
                raise ProfileInUse(site, profile, exc.holder_pid, time.monotonic() - started) from None
            held.append(lock)
        yield
    finally:
        for lock in reversed(held):
            lock.release()
