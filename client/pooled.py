"""Where one call's credentials come from: its one session, or the members of its site's pool.

The client asks :class:`Sessions` for credentials before the first attempt, and again after an
attempt failed before its first event. With a pool, a 429 cools that member down and the call
moves to another member at once; a 401 or a challenge re-harvests that member only (once); a
member whose session cannot be had is left aside; when no member can serve,
:class:`PoolExhausted` says when the first frees up (the client's retry policy may wait for it).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from harvestkit.cache.errors import CacheError, HarvestkitError

from .call import Call
from .credentials import Credentials
from .errors import AuthError, ChallengeError, ClientError, RateLimited

if TYPE_CHECKING:  # the pool modules are imported only when a pool is used
    from .pool import Member
    from .session_pool import SessionPool
    from .site import Site

__all__ = ["Sessions", "listing_call", "pool_for"]


def pool_for(pools: Iterable[SessionPool] | None, site: str) -> SessionPool | None:
    """The pool of ``site`` among ``pools``, if any."""
    return next((pool for pool in pools or () if pool.site == site), None)


class Sessions:
    """The credentials of one call, and where they go after a failure."""

    def __init__(self, call: Call, site: Site) -> None:
        self.base = call
        self.call = call  # the call of the session in use (its auth is the member's)
        self.site = site
        self.pool: SessionPool | None = None if call.auth.explicit else pool_for(call.settings.pools, site.name)
        self.member: Member | None = None
        self.key = call.options.user  # the sticky key of a conversation
        self.tried: set[Member] = set()
        self.recovered: set[Member | None] = set()

    async def first(self) -> Credentials:
        if self.pool is None:
            return await self.site.credentials(self.call)
        return await self._next()

    async def again(self) -> Credentials | None:
        """After the retry policy's wait: a pool picks anew (None: keep the credentials)."""
        if self.pool is None:
            return None
        self.tried.clear()
        return await self._next()

    async def after(self, error: ClientError, credentials: Credentials) -> tuple[Credentials | None, ClientError]:
        """What to try at once after ``error`` (another member, or recovered credentials), or
        None, and the error the retry policy judges then: ``error``, or the pool's
        :class:`~harvestkit.client.session_pool.PoolExhausted` when no member can serve."""
        pool, member = self.pool, self.member
        if pool is not None and member is not None and isinstance(error, RateLimited):
            await pool.cool_down(self.base.auth.cache, member, error.retry_after, error.headers)
            self.tried.add(member)
            return await self._moved(error)
        if member in self.recovered or not self.site.recoverable(error, credentials):
            return None, error
        self.recovered.add(member)
        try:
            return await self.site.recover(self.call, credentials, error), error
        except HarvestkitError as exc:
            if pool is None or member is None or not _sets_aside(exc):
                raise
            await pool.failed(self.base.auth.cache, member, exc)
            self.tried.add(member)
            return await self._moved(error, exc)

    async def _moved(self, error: ClientError, failure: HarvestkitError | None = None) -> tuple[Credentials | None, ClientError]:
        from .session_pool import PoolExhausted

        try:
            return await self._next(failure), error
        except PoolExhausted as exhausted:
            return None, exhausted

    async def _next(self, failure: HarvestkitError | None = None) -> Credentials:
        from .session_pool import PoolExhausted

        pool = self.pool
        assert pool is not None
        store = self.base.auth.cache
        while True:
            try:
                member = await pool.pick(store, key=self.key, exclude=self.tried)
            except PoolExhausted:
                if pool.rate_limited():
                    raise
                if failure is not None:  # why the last member failed says more than "none left"
                    raise failure from None
                raise self.base.auth.missing(f"every session of the {pool.site} pool failed a moment ago "
                                             f"({pool.failures()})") from None  # fmt: skip
            self.member = member
            self.call = dataclasses.replace(self.base, auth=self.base.auth.for_member(pool, member))
            try:
                return await self.site.credentials(self.call)
            except HarvestkitError as exc:
                if not _sets_aside(exc):
                    raise
                await pool.failed(store, member, exc)
                self.tried.add(member)
                failure = exc


def _sets_aside(error: HarvestkitError) -> bool:
    """Whether a member whose session failed this way should be left aside for a while: refused
    or missing credentials, a challenge, a failed harvest; not a network or store failure,
    which the retry policy (or the caller) handles."""
    if isinstance(error, ClientError):
        return isinstance(error, (AuthError, ChallengeError))
    return not isinstance(error, CacheError)


async def listing_call(call: Call, site: Site) -> Call:
    """The call to list models with: a fresh member's when the site has a pool (the pool's
    profiles need not include the call's own)."""
    pool = None if call.auth.explicit else pool_for(call.settings.pools, site.name)
    if pool is None:
        return call
    await pool.sync(call.auth.cache)
    fresh = [c.member for c in pool.candidates(time.time()) if c.fresh]
    return dataclasses.replace(call, auth=call.auth.for_member(pool, fresh[0])) if fresh else call
