"""`RedisStore`: the session store shared by every host that names the same Redis server.

Same contract as `AuthCache` (see `harvestkit.cache.backend.SessionStore`), same record JSON.
Layout under the key prefix (default ``harvestkit:``)::

    record:<site>:<profile>            the record (JSON), with a TTL past its expiry
    records                            set of "<site>:<profile>" (for `list`)
    lease:<site>:<profile>             refresh lease: "<token>|<host>:<pid>", with a TTL
    fence:<site>:<profile>             fencing-token counter of the refresh lease
    corrupt:<site>:<profile>:<time>    a quarantined unreadable record (kept 30 days)

`update` is optimistic: read the record, compute `fn(record)`, then a Lua script stores the result
only if the record is still the one read (compared by SHA-1), else it starts over. So no update
is lost, even between hosts, but `fn` may run more than once: it must only compute the new
record from the one it is given. Two round trips per update, one per get. `refresh` is single-flight across hosts (`harvestkit.cache.lease`).
A record lives until `record_grace` (7 days) past its expiry (for a record without one, past
`harvested_at + max_age`): a stale record still serves its cookies to the next refresh.
The sync methods run their async twin through `harvestkit.common.syncrun` (one connection a call).
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import inspect
import json
import random
import time
import warnings
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Self, TypeVar

from harvestkit.common.syncrun import run_sync

from .errors import CacheCorruptError, CacheCorruptWarning
from .lease import Lease
from .record import DEFAULT_PROFILE, SessionRecord, check_name, valid_name
from .redis_client import Connection, Script, StoreURL
from .store import DEFAULT_MAX_AGE, AuthCache, HarvestFn, UpdateFn
from .store_errors import LeaseLost, StoreTimeout

T = TypeVar("T")
QUARANTINE_SECONDS = 30 * 86400
_QUARANTINE = Script(
    """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('SREM', KEYS[3], ARGV[3])
return 1
"""
)
# Compare-and-swap: write only if the record is still the one `fn` was given (by its SHA-1).
_SWAP = Script(
    """
local current = redis.call('GET', KEYS[1])
if (current and redis.sha1hex(current) or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
return 1
"""
)

# Drop index members whose record is gone (KEYS[i + 1] is the record of member ARGV[i]).
_PRUNE = Script(
    """
for i, member in ipairs(ARGV) do
  if redis.call('EXISTS', KEYS[i + 1]) == 0 then redis.call('SREM', KEYS[1], member) end
end
return 0
"""
)


def decode(data: bytes, site: str, profile: str) -> SessionRecord:
    """The record stored as `data` for (site, profile); `CacheCorruptError` if it is not one,
    `CacheSchemaError` if a newer harvestkit wrote it."""
    try:
        record = SessionRecord.from_dict(json.loads(data.decode("utf-8")))
    except json.JSONDecodeError as exc:
        raise CacheCorruptError(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except UnicodeDecodeError:
        raise CacheCorruptError("not UTF-8 text") from None
    except RecursionError:
        raise CacheCorruptError("JSON nested too deeply") from None
    if (record.site, record.profile) != (site, profile):
        raise CacheCorruptError(f"it holds the record of {record.site}/{record.profile}")
    return record


class RedisStore:
    """The session store at the Redis server `url` (``redis://`` or ``rediss://``).

    `lock_timeout` bounds a contended `update`, `refresh_timeout` the wait for another host's
    harvest (both raise `StoreTimeout`, a `CacheLockTimeout`); `max_age` is the freshness window
    of records without a known expiry; `lease` is how long a refresh lease lasts unrenewed (a
    killed harvester is replaced after at most this long).
    """

    # The same freshness rules and cookie-file handling as the file store: its very code.
    is_fresh = AuthCache.is_fresh
    _settled = AuthCache._settled
    import_cookies = AuthCache.import_cookies
    export_cookies = AuthCache.export_cookies
    _encode = staticmethod(AuthCache._encode)

    def __init__(
        self,
        url: str,
        *,
        lock_timeout: float = 30.0,
        refresh_timeout: float = 600.0,
        max_age: float = DEFAULT_MAX_AGE,
        lease: float | None = None,
        record_grace: float = 7 * 86400.0,
        prefix: str | None = None,
    ) -> None:
        parsed = StoreURL.parse(url)
        self.conn = Connection(parsed)
        self.url = parsed.display
        self.prefix = parsed.prefix if prefix is None else prefix
        self.lock_timeout = lock_timeout
        self.refresh_timeout = refresh_timeout
        self.max_age = max_age
        self.lease = lease or parsed.lease or 15.0
        self.record_grace = record_grace

    def __repr__(self) -> str:
        return f"RedisStore(url={self.url!r}, prefix={self.prefix!r})"

    # -- layout -------------------------------------------------------------------------------------

    def key(self, kind: str, site: str, profile: str = DEFAULT_PROFILE) -> str:
        """The Redis key of `kind` ("record", "lease", "fence") for (site, profile)."""
        return f"{self.prefix}{kind}:{check_name('site', site)}:{check_name('profile', profile)}"

    @property
    def _index(self) -> str:
        return f"{self.prefix}records"

    def _ttl_ms(self, record: SessionRecord) -> int:
        deadline = record.expires_at if record.expires_at is not None else record.harvested_at + self.max_age
        return max(int((max(deadline - time.time(), 0.0) + self.record_grace) * 1000), 1000)

    async def aclose(self) -> None:
        """Close this event loop's connections (they reopen on the next call). Async users call it
        (or use `async with store:`) before their loop ends; the sync methods close their own."""
        await self.conn.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _sync(self, make: Callable[[], Awaitable[T]]) -> T:
        async def once() -> T:
            try:
                return await make()
            finally:
                await self.conn.aclose()

        return run_sync(once)

    # -- reading ------------------------------------------------------------------------------------

    async def _quarantine(self, site: str, profile: str, data: bytes, problem: CacheCorruptError) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        target = f"{self.key('corrupt', site, profile)}:{stamp}"
        async with self.conn.errors("quarantining an unreadable record", write=True):
            moved = await _QUARANTINE(
                self.conn.client(),
                [self.key("record", site, profile), target, self._index],
                [data, QUARANTINE_SECONDS, f"{site}:{profile}"],
            )
        if moved:  # only the caller that moved it reports it
            warnings.warn(
                f"harvestkit: the cached session {site}/{profile} in {self.url} was unreadable ({problem}); "
                f"moved it aside as {target} and treating it as no session",
                CacheCorruptWarning,
                stacklevel=4,
            )

    async def _decoded(self, site: str, profile: str, data: bytes | None) -> SessionRecord | None:
        if data is None:
            return None
        try:
            return decode(data, site, profile)
        except CacheCorruptError as exc:
            await self._quarantine(site, profile, data, exc)
            return None

    async def get(self, site: str, profile: str = DEFAULT_PROFILE) -> SessionRecord | None:
        """The record of (site, profile), or None (also after quarantining an unreadable one)."""
        key = self.key("record", site, profile)
        async with self.conn.errors("get"):
            data = await self.conn.client().get(key)
        return await self._decoded(site, profile, data)

    async def list(self) -> builtins.list[SessionRecord]:
        """Every readable record, sorted by (site, profile)."""
        client = self.conn.client()
        async with self.conn.errors("list"):
            members = sorted(m.decode("utf-8", "replace") for m in await client.smembers(self._index))
            members = [m for m in members if all(map(valid_name, m.split(":", 1))) and m.count(":") == 1]
            pairs = [tuple(m.split(":", 1)) for m in members]
            values = await client.mget([self.key("record", *pair) for pair in pairs]) if pairs else []
            expired = [m for m, v in zip(members, values, strict=True) if v is None]
            if expired:  # their TTL ran out (unless a writer brought one back meanwhile)
                keys = [self.key("record", *m.split(":", 1)) for m in expired]
                await _PRUNE(client, [self._index, *keys], expired)
        records = [await self._decoded(site, profile, v) for (site, profile), v in zip(pairs, values, strict=True)]
        return [record for record in records if record is not None]

    # -- writing ------------------------------------------------------------------------------------

    async def put(self, record: SessionRecord, *, timeout: float | None = None) -> None:
        """Store `record` as the record of (record.site, record.profile). (`timeout`: unused, no lock.)"""
        data = self._encode(record)
        async with self.conn.errors("put", write=True):
            async with self.conn.client().pipeline(transaction=True) as pipe:
                pipe.set(self.key("record", record.site, record.profile), data, px=self._ttl_ms(record))
                pipe.sadd(self._index, f"{record.site}:{record.profile}")
                await pipe.execute()

    async def update(
        self, site: str, fn: UpdateFn, profile: str = DEFAULT_PROFILE, *, timeout: float | None = None
    ) -> SessionRecord | None:
        """Atomically replace the record with `fn(current)` (see `AuthCache.update`); `fn` may be
        async and may run more than once when other writers get in between. `timeout` bounds the
        retries (default `lock_timeout`)."""
        key = self.key("record", site, profile)
        client = self.conn.client()
        loop = asyncio.get_running_loop()
        limit = self.lock_timeout if timeout is None else timeout
        deadline, pause = loop.time() + limit, 0.001
        while True:
            async with self.conn.errors("update"):
                data = await client.get(key)
            try:
                current = None if data is None else decode(data, site, profile)
            except CacheCorruptError as exc:
                await self._quarantine(site, profile, data, exc)
                continue
            new = fn(current)
            if inspect.isawaitable(new):
                new = await new
            if new is None:
                return current
            encoded = self._encode(new, (site, profile))
            seen = hashlib.sha1(data).hexdigest() if data is not None else ""
            async with self.conn.errors("update", write=True):
                if await _SWAP(client, [key, self._index], [seen, encoded, self._ttl_ms(new), f"{site}:{profile}"]):
                    return new
            if loop.time() + pause > deadline:  # another writer got in between every time
                raise StoreTimeout(f"an update of {site}/{profile} (other writers kept changing it)", limit, None)
            await asyncio.sleep(random.uniform(0, pause))
            pause = min(pause * 2, 0.05)

    async def delete(self, site: str, profile: str = DEFAULT_PROFILE, *, timeout: float | None = None) -> bool:
        """Remove the record; returns whether there was one."""
        key = self.key("record", site, profile)
        async with self.conn.errors("delete", write=True):
            async with self.conn.client().pipeline(transaction=True) as pipe:
                pipe.delete(key)
                pipe.srem(self._index, f"{site}:{profile}")
                deleted, _ = await pipe.execute()
        return bool(deleted)

    # -- single-flight refresh ----------------------------------------------------------------------

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
        """The fresh record of (site, profile), harvesting it with `fn()` when stale (see
        `AuthCache.refresh`, also for `stale`). Single-flight across hosts: one caller holds the lease and harvests,
        the others poll until its record is stored and return it. `fn` may be async (a plain one
        runs in a thread). Raises `StoreTimeout` after `timeout` (default `refresh_timeout`) of
        waiting, `LeaseLost` if the lease ran out and another caller took over before the store."""
        current = await self.get(site, profile)
        if stale is not None:
            force = True
            if current is not None and current.harvested_at != stale:
                return current
        elif not force and self.is_fresh(current, margin, max_age=max_age):
            return current
        seen = stale if stale is not None else current.harvested_at if current else None
        lease = Lease(self.conn, self.key("lease", site, profile), self.key("fence", site, profile), self.lease)
        loop = asyncio.get_running_loop()
        limit = self.refresh_timeout if timeout is None else timeout
        deadline, pause = loop.time() + limit, 0.005
        while (holder := await lease.try_acquire()) is not None:
            await asyncio.sleep(min(pause, max(deadline - loop.time(), 0.0)))
            pause = min(pause * 1.5, 0.1)
            current = await self.get(site, profile)
            if self._settled(current, seen, force, margin, max_age):
                return current
            if loop.time() >= deadline:
                raise StoreTimeout(f"the refresh of {site}/{profile}", limit, holder)
        async with lease.renewed():
            current = await self.get(site, profile)
            if self._settled(current, seen, force, margin, max_age):
                return current
            new = await (fn() if inspect.iscoroutinefunction(fn) else _in_thread(fn))
            data = self._encode(new, (site, profile))
            key = self.key("record", site, profile)
            if not await lease.write(key, data, self._ttl_ms(new), self._index, f"{site}:{profile}"):
                raise LeaseLost(site, profile, lease.token or 0)
            return new

    # -- sync twins ---------------------------------------------------------------------------------

    def get_sync(self, site: str, profile: str = DEFAULT_PROFILE) -> SessionRecord | None:
        """`get` for synchronous code."""
        return self._sync(lambda: self.get(site, profile))

    def list_sync(self) -> builtins.list[SessionRecord]:
        """`list` for synchronous code."""
        return self._sync(self.list)

    def put_sync(self, record: SessionRecord, *, timeout: float | None = None) -> None:
        """`put` for synchronous code."""
        self._sync(lambda: self.put(record, timeout=timeout))

    def update_sync(
        self, site: str, fn: UpdateFn, profile: str = DEFAULT_PROFILE, *, timeout: float | None = None
    ) -> SessionRecord | None:
        """`update` for synchronous code."""
        return self._sync(lambda: self.update(site, fn, profile, timeout=timeout))

    def delete_sync(self, site: str, profile: str = DEFAULT_PROFILE, *, timeout: float | None = None) -> bool:
        """`delete` for synchronous code."""
        return self._sync(lambda: self.delete(site, profile, timeout=timeout))

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
        """`refresh` for synchronous code (`fn` runs in a worker thread)."""
        return self._sync(
            lambda: self.refresh(site, fn, margin, profile, force=force, max_age=max_age, timeout=timeout)
        )


async def _in_thread(fn: Callable[[], Any]) -> Any:
    result = await asyncio.to_thread(fn)
    return await result if inspect.isawaitable(result) else result
