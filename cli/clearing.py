"""What `harvestkit cache clear` removes: records, their set-aside unreadable copies and, on request,
the browser profiles (where a sign-in lives). Each removal is said in one line."""

from __future__ import annotations

import shutil
from pathlib import Path

from harvestkit.cache import AuthCache, SessionStore
from harvestkit.cache.errors import CacheWriteError
from harvestkit.cache.locks import CacheLock


def _browser_profiles(site: str | None, profile: str) -> list[tuple[str, str, Path]]:
    from harvestkit.harvester.profiles import browser_root

    root = browser_root()
    if site is not None:
        found = [(site, profile, root / site / profile)]
    else:
        found = [(d.parent.name, d.name, d) for d in sorted(root.glob("*/*")) if d.is_dir() and not d.is_symlink()]
    return [(s, p, d) for s, p, d in found if d.is_dir()]


def _wipe_profile(site: str, profile: str, directory: Path) -> str:
    from harvestkit.harvester.errors import ProfileInUse

    lock = CacheLock(directory.with_name(f"{profile}.lock"), 0)
    try:
        lock.acquire()
    except TimeoutError as exc:
        raise ProfileInUse(site, profile, getattr(exc, "holder_pid", None), 0.0) from None
    try:
        shutil.rmtree(directory)
    except OSError as exc:
        raise CacheWriteError(directory, exc, "remove") from None
    finally:
        lock.release()
    return (
        f"removed the browser profile {directory}: the {site} sign-in kept there is gone "
        f"(run `harvestkit login {site}` to sign in again)"
    )


def clear(cache: SessionStore, site: str | None, profile: str, browser_profile: bool) -> list[str]:
    """Remove the session(s) (every one when `site` is None) and say what was removed. In a Redis
    store, unreadable records set aside expire by themselves (after 30 days)."""
    keys = cache.keys() if site is None else [(site, profile)]
    lines = []
    for key_site, key_profile in keys:
        files = isinstance(cache, AuthCache)
        path = cache.record_path(key_site, key_profile) if files else None
        if cache.delete_sync(key_site, key_profile):
            lines.append(f"removed the {key_site}/{key_profile} session ({path or cache.location})")
        for copy in sorted(path.parent.glob(f"{path.name}.corrupt-*")) if path else ():
            try:
                copy.unlink()
            except OSError as exc:
                raise CacheWriteError(copy, exc, "remove") from None
            lines.append(f"removed the unreadable copy {copy}")
    profiles = _browser_profiles(site, profile)
    if browser_profile:
        lines += [_wipe_profile(*found) for found in profiles]
    if not lines:
        lines.append(f"nothing to remove: no {'session' if site is None else f'{site}/{profile} session'} in {cache.location}")
    if not browser_profile:
        lines += [
            f"kept the browser profile {d} (the {s} sign-in lives there; --browser-profile removes it)"
            for s, _, d in profiles
        ]
    return lines
