"""`AuthCache`: one JSON record per (site, profile), safe across threads and processes.

Writes are read-modify-write under the record's lock (`<profile>.lock`): the new content
goes to a 0600 temp file that is fsync'd and renamed over the record, then the directory
is fsync'd. Readers take no lock: they always see a whole file, old or new.

Single-flight refresh uses a second lock per record (`<profile>.refresh.lock`), held for the
whole harvest, so normal updates (cookie merges after each response) keep flowing while a
harvest runs, and the harvest function may itself call `put`/`update` without deadlock.
Locks are not reentrant: an `update` function must not call `put`/`update` on its own record.

Freshness: a record with `expires_at` is fresh while `now + margin < expires_at`. A record
with no known expiry (None) is fresh only while `now + margin - harvested_at < max_age`
(12 hours unless the cache or the call says otherwise): an unknown expiry must not mean
"valid forever" (the rule is `harvestkit.cache.base.StoreBase.is_fresh`, shared with Redis).

Unreadable records (bad JSON, wrong types, missing fields) are moved aside as
`<profile>.json.corrupt-<UTC time>`, reported once with a `CacheCorruptWarning`, and read
as no session. A record from a newer harvestkit raises `CacheSchemaError` and is kept.
"""

from __future__ import annotations

import asyncio
import builtins
import inspect
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .base import DEFAULT_MAX_AGE, HarvestFn, StoreBase, UpdateFn, decode, encode, log
from .errors import CacheCorruptError, CacheCorruptWarning, CacheError, CacheSchemaError, CacheWriteError
from .locks import CacheLock
from .paths import (
    check_existing_private,
    default_root,
    ensure_private_dir,
    fsync_dir,
    quarantine,
    read_private,
    write_private_atomic,
)
from .record import DEFAULT_PROFILE, SessionRecord, check_name, valid_name

__all__ = ["DEFAULT_MAX_AGE", "AuthCache", "HarvestFn", "UpdateFn"]


async def _to_completion(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a plain `fn` in a worker thread; if the caller is cancelled meanwhile, wait for the
    thread before letting the cancellation through (so a lock held around it is not released
    while the write is still going on)."""
    task = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.gather(task, return_exceptions=True)
        raise


async def _run(fn: Callable[..., Any], *args: Any) -> Any:
    """Await an async `fn`; run a plain one in a worker thread (awaiting what it returns)."""
    if inspect.iscoroutinefunction(fn):
        return await fn(*args)
    result = await asyncio.to_thread(fn, *args)
    return await result if inspect.isawaitable(result) else result


class AuthCache(StoreBase):
    """The auth cache rooted at `root` (see `harvestkit.cache.paths` for the default).

    `lock_timeout` bounds waits for a record lock, `refresh_timeout` waits for another
    process's harvest; both raise `CacheLockTimeout`. `max_age` is the freshness window of
    records without a known expiry.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        lock_timeout: float = 30.0,
        refresh_timeout: float = 600.0,
        max_age: float = DEFAULT_MAX_AGE,
    ) -> None:
        self.root = Path(root) if root is not None else default_root()
        self.lock_timeout = lock_timeout
        self.refresh_timeout = refresh_timeout
        self.max_age = max_age

    def __repr__(self) -> str:
        return f"AuthCache(root={str(self.root)!r})"

    @property
    def location(self) -> str:
        """Where the records are, for messages: the cache directory."""
        return str(self.root)

    # -- layout -----------------------------------------------------------------------------------

    def record_path(self, site: str, profile: str = DEFAULT_PROFILE) -> Path:
        """The file that holds the record of (site, profile)."""
        return self.root / check_name("site", site) / f"{check_name('profile', profile)}.json"

    def _lock(self, site: str, profile: str, timeout: float | None, kind: str = "") -> CacheLock:
        path = self.record_path(site, profile).with_name(f"{profile}{kind}.lock")
        default = self.refresh_timeout if kind else self.lock_timeout
        return CacheLock(path, default if timeout is None else timeout)

    def _dirs(self, site: str, create: bool) -> bool:
        site_dir = self.root / check_name("site", site)
        if not ensure_private_dir(self.root, create=create):
            return False
        _refuse_link(site_dir)
        return ensure_private_dir(site_dir, create=create)

    # -- reading ----------------------------------------------------------------------------------

    def _load(self, site: str, profile: str) -> SessionRecord | None:
        path = self.record_path(site, profile)
        data = read_private(path)
        if data is None:
            return None
        try:
            return decode(data, site, profile)
        except CacheSchemaError as exc:
            raise CacheSchemaError(exc.found, exc.supported, path) from None

    def _load_or_quarantine(self, site: str, profile: str, *, move: bool = True) -> SessionRecord | None:
        # The caller holds the record lock (unless `move` is False), so no writer can replace the
        # file meanwhile.
        try:
            return self._load(site, profile)
        except CacheCorruptError as exc:
            path = self.record_path(site, profile)
            try:
                if not move:
                    raise OSError("the cache cannot be written")
                done = f"moved {path} aside as {quarantine(path).name}"
            except OSError as failure:
                done = f"could not move {path} aside ({failure.strerror or failure})"
            warnings.warn(
                f"harvestkit: the cached session {site}/{profile} was unreadable ({exc}); "
                f"{done} and treating it as no session",
                CacheCorruptWarning,
                stacklevel=3,
            )
            return None

    def get_sync(self, site: str, profile: str = DEFAULT_PROFILE) -> SessionRecord | None:
        """The record of (site, profile), or None (also after quarantining an unreadable one).

        Takes no lock, unless the record is unreadable and can be moved aside."""
        if not self._dirs(site, create=False):
            return None
        try:
            return self._load(site, profile)
        except CacheCorruptError:
            try:
                lock = self._lock(site, profile, None)
                lock.acquire()
            except CacheWriteError:  # a read-only or full cache: report, leave the file alone
                return self._load_or_quarantine(site, profile, move=False)
            try:
                return self._load_or_quarantine(site, profile)
            finally:
                lock.release()

    def keys(self) -> builtins.list[tuple[str, str]]:
        """The (site, profile) of every record file, readable or not, sorted."""
        return self._keys()

    def _keys(self) -> builtins.list[tuple[str, str]]:
        if not ensure_private_dir(self.root, create=False):
            return []
        keys = []
        for site in os.scandir(self.root):
            if site.is_symlink() and valid_name(site.name):
                _refuse_link(Path(site.path))  # refused here as everywhere, never silently skipped
            if site.is_dir(follow_symlinks=False) and valid_name(site.name):
                for entry in os.scandir(site.path):
                    profile, ext = os.path.splitext(entry.name)
                    if ext == ".json" and valid_name(profile):
                        keys.append((site.name, profile))
        return sorted(keys)

    def list_sync(self) -> builtins.list[SessionRecord]:
        """Every readable record, sorted by (site, profile)."""
        records = (self.get_sync(site, profile) for site, profile in self._keys())
        return [record for record in records if record is not None]

    # -- writing ----------------------------------------------------------------------------------

    def _write(self, record: SessionRecord, data: bytes) -> None:
        # The caller holds the record lock.
        path = self.record_path(record.site, record.profile)
        check_existing_private(path)
        write_private_atomic(path, data)

    def put_sync(self, record: SessionRecord, *, timeout: float | None = None) -> None:
        """Store `record` as the record of (record.site, record.profile)."""
        self._put(record, None, timeout)

    def _put(self, record: SessionRecord, key: tuple[str, str] | None, timeout: float | None) -> None:
        data = encode(record, key)
        self._dirs(record.site, create=True)
        with self._lock(record.site, record.profile, timeout):
            self._write(record, data)

    def update_sync(
        self,
        site: str,
        fn: UpdateFn,
        profile: str = DEFAULT_PROFILE,
        *,
        timeout: float | None = None,
        best_effort: bool = False,
    ) -> SessionRecord | None:
        """Atomically replace the record with `fn(current)` under the record lock.

        `fn` receives None when there is no record (or it was unreadable): it may create one,
        or return None to write nothing; `update` then returns the current record (maybe
        None). So `cache.update_sync(site, lambda r: r and r.merge_cookies(cookies))` merges only
        into an existing session. Returns the stored record.

        `best_effort=True` is for data that may be lost (cookies a response refreshed): when the
        cache cannot be written (read-only, full), that is logged once as a warning naming the
        path and the cause, and the new record is returned unsaved.
        """
        try:
            self._dirs(site, create=True)
            with self._lock(site, profile, timeout):
                current = self._load_or_quarantine(site, profile)
                new = fn(current)
                if new is None:
                    return current
                self._write(new, encode(new, (site, profile)))
                return new
        except CacheWriteError as exc:
            if not best_effort:
                raise
            _warn_unsaved(site, profile, exc)
            current = self._load_or_quarantine(site, profile, move=False)
            new = fn(current)
            return current if new is None else new

    def delete_sync(self, site: str, profile: str = DEFAULT_PROFILE, *, timeout: float | None = None) -> bool:
        """Remove the record; returns whether there was one."""
        if not self._dirs(site, create=False):
            return False
        path = self.record_path(site, profile)
        with self._lock(site, profile, timeout):
            try:
                os.unlink(path)
            except FileNotFoundError:
                return False
            except OSError as exc:
                raise CacheWriteError(path, exc, "remove") from None
            fsync_dir(path.parent)
            return True

    # -- single-flight refresh --------------------------------------------------------

    def refresh_sync(
        self,
        site: str,
        fn: Callable[[], SessionRecord],
        margin: float = 0.0,
        profile: str = DEFAULT_PROFILE,
        *,
        force: bool = False,
        max_age: float | None = None,
        timeout: float | None = None,
    ) -> SessionRecord:
        """The fresh record of (site, profile), harvesting it with `fn()` when stale.

        Single-flight across processes: callers that find the record stale queue on its
        refresh lock; the first one calls `fn()` and stores its record, the others then find
        it fresh and return it. `force=True` harvests even a fresh record, unless another
        caller harvested while this one waited. `timeout` bounds the wait for the lock.
        """
        current = self.get_sync(site, profile)
        if not force and self.is_fresh(current, margin, max_age=max_age):
            return current
        seen = current.harvested_at if current else None
        self._dirs(site, create=True)
        with self._lock(site, profile, timeout, kind=".refresh"):
            current = self.get_sync(site, profile)
            if self._settled(current, seen, force, margin, max_age):
                return current
            new = fn()
            self._put(new, (site, profile), None)
            return new

    # -- async twins: file operations run in a worker thread, lock waits poll without blocking -------

    async def get(self, site: str, profile: str = DEFAULT_PROFILE) -> SessionRecord | None:
        """`get_sync` without blocking the event loop."""
        return await asyncio.to_thread(self.get_sync, site, profile)

    async def list(self) -> builtins.list[SessionRecord]:
        """`list_sync` without blocking the event loop."""
        return await asyncio.to_thread(self.list_sync)

    async def put(self, record: SessionRecord, *, timeout: float | None = None) -> None:
        """`put_sync` without blocking the event loop."""
        await asyncio.to_thread(self.put_sync, record, timeout=timeout)

    async def delete(self, site: str, profile: str = DEFAULT_PROFILE, *, timeout: float | None = None) -> bool:
        """`delete_sync` without blocking the event loop."""
        return await asyncio.to_thread(self.delete_sync, site, profile, timeout=timeout)

    async def update(
        self,
        site: str,
        fn: UpdateFn,
        profile: str = DEFAULT_PROFILE,
        *,
        timeout: float | None = None,
        best_effort: bool = False,
    ) -> SessionRecord | None:
        """`update_sync` without blocking the event loop; `fn` may be async (a plain one runs in a thread)."""
        try:
            await asyncio.to_thread(self._dirs, site, True)
            async with self._lock(site, profile, timeout):
                current = await asyncio.to_thread(self._load_or_quarantine, site, profile)
                new = await _run(fn, current)
                if new is None:
                    return current
                await _to_completion(self._write, new, encode(new, (site, profile)))
                return new
        except CacheWriteError as exc:
            if not best_effort:
                raise
            _warn_unsaved(site, profile, exc)
            current = await asyncio.to_thread(self._load_or_quarantine, site, profile, move=False)
            new = await _run(fn, current)
            return current if new is None else new

    async def refresh(
        self,
        site: str,
        fn: HarvestFn,
        margin: float = 0.0,
        profile: str = DEFAULT_PROFILE,
        *,
        force: bool = False,
        max_age: float | None = None,
        timeout: float | None = None,
        stale: float | None = None,
    ) -> SessionRecord:
        """`refresh_sync` without blocking the event loop; `fn` may be async (a plain one runs in a thread).

        `stale` is the `harvested_at` of a record the caller saw refused: it implies `force`, and a
        record harvested since then is returned without `fn`, however early it was stored."""
        current = await self.get(site, profile)
        force = force or stale is not None
        seen = stale if stale is not None else current.harvested_at if current else None
        if self._settled(current, seen, force, margin, max_age):  # fresh, or harvested since `seen`
            return current
        await asyncio.to_thread(self._dirs, site, True)
        async with self._lock(site, profile, timeout, kind=".refresh"):
            current = await self.get(site, profile)
            if self._settled(current, seen, force, margin, max_age):
                return current
            new = await _run(fn)
            await _to_completion(self._put, new, (site, profile), None)
            return new


_unsaved_reported: set[tuple[str, str]] = set()


def _refuse_link(path: Path) -> None:
    """A site folder below the root must be a folder, not a symbolic link (none is followed)."""
    if path.is_symlink():
        raise CacheError(
            f"refusing to use {path}: it is a symbolic link, and harvestkit follows none in its cache; "
            f"replace it with the folder itself (mv \"$(readlink -f {path})\" {path})"
        )


def _warn_unsaved(site: str, profile: str, error: CacheWriteError) -> None:
    """Log, once per path and cause, that an update could not be saved."""
    key = (str(error.path), error.cause)
    if key not in _unsaved_reported:
        _unsaved_reported.add(key)
        log.warning("%s/%s: %s; carrying on with the update unsaved", site, profile, error)
