"""`RedisStore`: the session store shared by every host that names the same Redis server.

Same contract as `AuthCache` (see `harvestkit.cache.backend.SessionStore`), same record JSON.
Layout under the key prefix (default ``harvestkit:``)::

    record:<site>:<profile>            the record (JSON), with a TTL past its expiry
    records                            set of "<site>:<profile>" (for `list`)
    lease:<site>:<profile>             refresh lease: "<token>|<host>:<pid>", with a TTL
    fence:<site>:<profile>             fencing-token counter of the refresh lease
    corrupt:<site>:<profile>:<time>    a quarantined unreadable record (kept 30 days)

`update` is optimistic: compute `fn(record)` from the record as this process last read or wrote it
(else as read now), then a Lua script stores the result only if the record is still that one
(compared by SHA-1), else it answers the record as it is and `fn` runs again on it. So no update
is lost, even between hosts, but `fn` may run more than once: it must only compute the new
record from the one it is given. One round trip per update when no other writer got in between
since this process last saw the record (two when it has not seen it), one per get. A process's
own updates of one record take turns (an asyncio lock per event loop), so a busy gateway's
cookie merges do not collide with each other; only other processes' can make the swap retry. `refresh` is single-flight across hosts (`harvestkit.cache.lease`).
A record lives until `record_grace` (7 days) past its expiry (for a record without one, past
`harvested_at + max_age`): a stale record still serves its cookies to the next refresh.
The sync methods run their async twin on one long-lived event loop (`harvestkit.cache.redis_bridge`),
whose connections stay open between calls.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import inspect
import random
import time
import warnings
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Self

from .base import DEFAULT_MAX_AGE, HarvestFn, StoreBase, UpdateFn, decode, encode, log
from .errors import CacheCorruptError, CacheCorruptWarning
from .lease import Lease
from .locks import LoopLocks, loop_lock
from .record import DEFAULT_PROFILE, SessionRecord, check_name, valid_name
from .redis_bridge import SyncTwins
from .redis_client import Connection, Script, StoreURL
from .store_errors import LeaseLost, StoreTimeout, StoreUnavailable

_unsaved_reported: set[tuple[str, type[Exception]]] = set()  # (store, cause) logged once
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
if (current and redis.sha1hex(current) or '') ~= ARGV[1] then
  if current then return {0, current} end
  return {0}
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
return {1}
"""
)
SEEN_LIMIT = 4096  # records whose last known bytes are kept, for one-round-trip updates

# Drop index members whose record is gone (KEYS[i + 1] is the record of member ARGV[i]).
_PRUNE = Script(
    """
for i, member in ipairs(ARGV) do
  if redis.call('EXISTS', KEYS[i + 1]) == 0 then redis.call('SREM', KEYS[1], member) end
end
return 0
"""
)


class RedisStore(SyncTwins, StoreBase):
    """The session store at the Redis server `url` (``redis://`` or ``rediss://``).

    `lock_timeout` bounds a contended `update`, `refresh_timeout` the wait for another host's
    harvest (both raise `StoreTimeout`, a `CacheLockTimeout`); `max_age` is the freshness window
    of records without a known expiry; `lease` is how long a refresh lease lasts unrenewed (a
    killed harvester is replaced after at most this long).
    """

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
        self._seen: dict[str, bytes] = {}
        self._local_locks: LoopLocks = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return f"RedisStore(url={self.url!r}, prefix={self.prefix!r})"

    @property
    def location(self) -> str:
        """Where the records are, for messages: the server (password redacted) and key prefix."""
        return f"{self.url} (keys {self.prefix}*)"

    # -- layout -------------------------------------------------------------------------------------

    def key(self, kind: str, site: str, profile: str = DEFAULT_PROFILE) -> str:
        """The Redis key of `kind` ("record", "lease", "fence") for (site, profile)."""
        return f"{self.prefix}{kind}:{check_name('site', site)}:{check_name('profile', profile)}"

    @property
    def _index(self) -> str:
        return f"{self.prefix}records"

    def _remember(self, key: str, data: bytes | None) -> None:
        if data is None:
            self._seen.pop(key, None)
            return
        if len(self._seen) >= SEEN_LIMIT:
            self._seen.clear()
        self._seen[key] = data

    def _ttl_ms(self, record: SessionRecord) -> int:
        deadline = record.expires_at if record.expires_at is not None else record.harvested_at + self.max_age
        return max(int((max(deadline - time.time(), 0.0) + self.record_grace) * 1000), 1000)

    async def aclose(self) -> None:
        """Close this event loop's connections (they reopen on the next call). Async users call it
        (or use `async with store:`) before their loop ends; the sync methods' loop keeps its own."""
        await self.conn.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

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
        key = self.key("record", site, profile)
        try:
            record = None if data is None else decode(data, site, profile)
        except CacheCorruptError as exc:
            self._remember(key, None)
            await self._quarantine(site, profile, data, exc)
            return None
        self._remember(key, data)
        return record

    async def get(self, site: str, profile: str = DEFAULT_PROFILE) -> SessionRecord | None:
        """The record of (site, profile), or None (also after quarantining an unreadable one)."""
        key = self.key("record", site, profile)
        async with self.conn.errors("get"):
            data = await self.conn.client().get(key)
        return await self._decoded(site, profile, data)

    async def _pairs(self) -> builtins.list[tuple[str, str]]:
        async with self.conn.errors("list"):
            members = sorted(m.decode("utf-8", "replace") for m in await self.conn.client().smembers(self._index))
        pairs = [m.split(":", 1) for m in members if m.count(":") == 1]
        return [(site, profile) for site, profile in pairs if valid_name(site) and valid_name(profile)]

    def keys(self) -> builtins.list[tuple[str, str]]:
        """The (site, profile) of every record, readable or not (and maybe just expired), sorted."""
        return self._sync(self._pairs)

    async def list(self) -> builtins.list[SessionRecord]:
        """Every readable record, sorted by (site, profile)."""
        client = self.conn.client()
        pairs = await self._pairs()
        async with self.conn.errors("list"):
            values = await client.mget([self.key("record", *pair) for pair in pairs]) if pairs else []
            expired = [f"{s}:{p}" for (s, p), v in zip(pairs, values, strict=True) if v is None]
            if expired:  # their TTL ran out (unless a writer brought one back meanwhile)
                keys = [self.key("record", *m.split(":", 1)) for m in expired]
                await _PRUNE(client, [self._index, *keys], expired)
        records = [await self._decoded(site, profile, v) for (site, profile), v in zip(pairs, values, strict=True)]
        return [record for record in records if record is not None]

    # -- writing ------------------------------------------------------------------------------------

    async def put(self, record: SessionRecord, *, timeout: float | None = None) -> None:
        """Store `record` as the record of (record.site, record.profile). (`timeout`: unused, no lock.)"""
        data = encode(record)
        async with self.conn.errors("put", write=True):
            async with self.conn.client().pipeline(transaction=True) as pipe:
                pipe.set(self.key("record", record.site, record.profile), data, px=self._ttl_ms(record))
                pipe.sadd(self._index, f"{record.site}:{record.profile}")
                await pipe.execute()
        self._remember(self.key("record", record.site, record.profile), data)

    async def update(
        self,
        site: str,
        fn: UpdateFn,
        profile: str = DEFAULT_PROFILE,
        *,
        timeout: float | None = None,
        best_effort: bool = False,
    ) -> SessionRecord | None:
        """Atomically replace the record with `fn(current)` (see `AuthCache.update`); `fn` may be
        async and may run more than once when other writers get in between. `timeout` bounds the
        retries (default `lock_timeout`).

        `best_effort=True` is for data that may be lost (cookies a response refreshed): when the
        server cannot be reached or the retries run out, that is logged as a warning (once per
        cause) and None is returned, as if there were no record to update."""
        key = self.key("record", site, profile)
        limit = self.lock_timeout if timeout is None else timeout
        try:
            # This process's updates of one record queue here, so that under load they do not
            # collide with each other in the swap and retry; other hosts' are kept out by the swap.
            lock = loop_lock(self._local_locks, key)
            started = time.monotonic()
            try:
                async with asyncio.timeout(limit):
                    await lock.acquire()
            except TimeoutError:
                raise StoreTimeout(f"an update of {site}/{profile} (this process's others kept it busy)", limit, None) from None
            try:
                return await self._update(site, fn, profile, max(limit - (time.monotonic() - started), 0.0))
            finally:
                lock.release()
        except (StoreUnavailable, StoreTimeout) as exc:
            if not best_effort:
                raise
            if (self.url, type(exc)) not in _unsaved_reported:
                _unsaved_reported.add((self.url, type(exc)))
                log.warning("%s/%s: %s; carrying on with the update unsaved", site, profile, exc)
            return None

    async def _update(self, site: str, fn: UpdateFn, profile: str, limit: float) -> SessionRecord | None:
        key = self.key("record", site, profile)
        client = self.conn.client()
        loop = asyncio.get_running_loop()
        deadline, pause = loop.time() + limit, 0.0005
        data = self._seen.get(key)  # what this process last read or wrote: checked by the swap
        verified = data is None
        if verified:
            async with self.conn.errors("update"):
                data = await client.get(key)
        while True:
            try:
                current = None if data is None else decode(data, site, profile)
            except CacheCorruptError as exc:
                await self._quarantine(site, profile, data, exc)
                data, verified = None, True
                continue
            new = fn(current)
            if inspect.isawaitable(new):
                new = await new
            if new is None and verified:
                return current
            if new is None:  # decided on bytes not read from the server just now: read them, decide again
                async with self.conn.errors("update"):
                    data, verified = await client.get(key), True
                continue
            encoded = encode(new, (site, profile))
            seen = hashlib.sha1(data).hexdigest() if data is not None else ""
            async with self.conn.errors("update", write=True):
                answer = await _SWAP(client, [key, self._index], [seen, encoded, self._ttl_ms(new), f"{site}:{profile}"])
            if answer[0]:
                self._remember(key, encoded)
                return new
            data, verified = (answer[1] if len(answer) > 1 else None), True  # the record as it is now
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
        self._remember(key, None)
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
        force = force or stale is not None
        seen = stale if stale is not None else current.harvested_at if current else None
        if self._settled(current, seen, force, margin, max_age):  # fresh, or harvested since `seen`
            return current
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
            data = encode(new, (site, profile))
            key = self.key("record", site, profile)
            if not await lease.write(key, data, self._ttl_ms(new), self._index, f"{site}:{profile}"):
                raise LeaseLost(site, profile, lease.token or 0)
            self._remember(key, data)
            return new


async def _in_thread(fn: Callable[[], Any]) -> Any:
    result = await asyncio.to_thread(fn)
    return await result if inspect.isawaitable(result) else result
