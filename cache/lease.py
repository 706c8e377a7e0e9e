"""Single-flight refresh across hosts: a lease in Redis with a fencing token.

A caller that must harvest takes the lease of (site, profile): one Lua script checks that no one
holds it, draws the next fencing token from a per-record counter (INCR, never reset) and stores
``<token>|<host>:<pid>`` with a time to live. While the harvest runs, the lease is renewed every
third of its life; a holder that dies (SIGKILL, power loss) stops renewing and the lease runs out,
so a waiter takes over. The harvest is stored by a second script that writes only while the
counter still equals the holder's token: a holder whose lease ran out and was taken over (its
token is no longer the latest) cannot overwrite the newer session, however late it wakes up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator

from .redis_client import Connection, Script
from .store_errors import StoreError

log = logging.getLogger(__name__)

_ACQUIRE = Script(
    """
local held = redis.call('GET', KEYS[1])
if held then return {0, held} end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token .. '|' .. ARGV[1], 'PX', ARGV[2])
return {token, ''}
"""
)
_RENEW = Script(
    """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
)
_RELEASE = Script(
    """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
)
_FENCED_WRITE = Script(
    """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('SADD', KEYS[3], ARGV[4])
return 1
"""
)


def this_holder() -> str:
    """How a lease names its holder: ``<host>:<pid>``."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Lease:
    """The refresh lease of one record (`lease_key`), fenced by the counter at `fence_key`."""

    def __init__(self, conn: Connection, lease_key: str, fence_key: str, seconds: float) -> None:
        self.conn = conn
        self.lease_key = lease_key
        self.fence_key = fence_key
        self.seconds = seconds
        self.token: int | None = None
        self.lost = False
        self._value = ""

    @property
    def _ms(self) -> int:
        return max(int(self.seconds * 1000), 1)

    async def try_acquire(self) -> str | None:
        """Take the lease if free (then `token` is set and None returned); else the holder's name."""
        client = self.conn.client()
        async with self.conn.errors("taking the refresh lease", write=True):
            token, held = await _ACQUIRE(client, [self.lease_key, self.fence_key], [this_holder(), self._ms])
        if not token:
            return held.decode("utf-8", "replace").partition("|")[2]
        self.token, self.lost = int(token), False
        self._value = f"{self.token}|{this_holder()}"
        return None

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.seconds / 3)
            try:
                async with self.conn.errors("renewing the refresh lease"):
                    renewed = await _RENEW(self.conn.client(), [self.lease_key], [self._value, self._ms])
            except StoreError as exc:  # the store may come back before the lease runs out
                log.warning("harvestkit: could not renew the refresh lease %s: %s", self.lease_key, exc)
                continue
            if not renewed:
                self.lost = True
                log.warning("harvestkit: the refresh lease %s ran out and was taken over", self.lease_key)
                return

    @contextlib.asynccontextmanager
    async def renewed(self) -> AsyncIterator[None]:
        """Keep the lease renewed inside; release it on the way out (also on errors)."""
        task = asyncio.ensure_future(self._renew_forever())
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await self.release()

    async def write(self, record_key: str, data: bytes, ttl_ms: int, index_key: str, member: str) -> bool:
        """Store `data` at `record_key` only if this lease's token is still the latest one."""
        async with self.conn.errors("storing the refreshed session", write=True):
            written = await _FENCED_WRITE(
                self.conn.client(),
                [self.fence_key, record_key, index_key],
                [str(self.token), data, ttl_ms, member],
            )
        return bool(written)

    async def release(self) -> None:
        """Give the lease back if still held (a lease that ran out is left to its new holder)."""
        if self.token is None:
            return
        try:
            async with self.conn.errors("releasing the refresh lease"):
                await _RELEASE(self.conn.client(), [self.lease_key], [self._value])
        except StoreError as exc:  # it runs out by itself
            log.warning("harvestkit: could not release the refresh lease %s: %s", self.lease_key, exc)
        finally:
            self.token = None
