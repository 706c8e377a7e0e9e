"""The sync path of `RedisStore`: its async methods, run on one long-lived event loop.

Each sync call is handed to an event loop that runs in a daemon thread of its own (one per
process, started on first use, started again in a forked child). The store's asyncio client
on that loop keeps its connections open between calls, so a sync call costs its round trips
plus a thread hand-off, instead of a new event loop, a new connection and its AUTH every call.
At exit the loop closes those connections (no unclosed-socket warning, no half-open socket).

Why not redis-py's blocking client for the sync path: the store's atomic update (a
compare-and-swap retried under contention) and its refresh lease (fenced, renewed while the
harvest runs, released on every way out) would then be written twice, once blocking and once
async, and their races are the subtle part of the store. One implementation, run from both
sides, keeps both sides equally correct; `scripts/bench_store.py` measures what the hand-off
costs (a fraction of one round trip on loopback).
"""

from __future__ import annotations

import asyncio
import atexit
import builtins
import concurrent.futures
import contextlib
import os
import threading
import weakref
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from harvestkit.common.syncrun import run_sync

from .base import UpdateFn
from .record import DEFAULT_PROFILE, SessionRecord

if TYPE_CHECKING:
    from .redis_client import Connection

T = TypeVar("T")
_lock = threading.Lock()
_bridge: tuple[int, asyncio.AbstractEventLoop, threading.Thread] | None = None


_bridged: weakref.WeakSet[Connection] = weakref.WeakSet()  # what opened sockets on the bridge's loop


def _loop() -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
    global _bridge
    with _lock:
        if _bridge is None or _bridge[0] != os.getpid() or not _bridge[2].is_alive():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="harvestkit-store", daemon=True)
            thread.start()
            if _bridge is None:
                atexit.register(_close_at_exit)
            _bridge = (os.getpid(), loop, thread)
        return _bridge[1], _bridge[2]


def _close_at_exit() -> None:
    """Close the connections the bridge's loop holds, then the loop: no socket is left open to
    the interpreter's exit (atexit runs while the daemon thread still does)."""
    bridge = _bridge
    if bridge is None or bridge[0] != os.getpid() or not bridge[2].is_alive():
        return
    _, loop, thread = bridge

    async def close() -> None:
        for conn in list(_bridged):
            with contextlib.suppress(Exception):
                await conn.aclose()

    with contextlib.suppress(Exception):
        asyncio.run_coroutine_threadsafe(close(), loop).result(timeout=2)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=2)
    if not thread.is_alive():
        loop.close()


def on_bridge() -> bool:
    """Whether the calling thread is the bridge's own: an async function given to a sync method,
    calling a sync method again. Waiting there would block the very loop the call needs."""
    return _bridge is not None and _bridge[2] is threading.current_thread()


def run_bridged(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """The result of the coroutine `make()`, run on the bridge's loop; the calling thread waits
    (not the bridge's own: see `on_bridge`). Ctrl-C while waiting cancels the call and waits for
    its teardown (so a lease it holds is released), then raises."""
    loop, _thread = _loop()
    future = asyncio.run_coroutine_threadsafe(make(), loop)
    try:
        return future.result()
    except BaseException:
        if not future.done():
            future.cancel()
            concurrent.futures.wait([future])
        raise


class SyncTwins:
    """The sync methods of `RedisStore`, each running its async twin through the bridge."""

    conn: Connection
    if TYPE_CHECKING:  # what RedisStore provides
        get: Any
        list: Any
        put: Any
        update: Any
        delete: Any
        refresh: Any

    def _sync(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        if not on_bridge():
            _bridged.add(self.conn)
            return run_bridged(make)

        async def closing() -> T:  # called back from a bridged call: a loop of its own, closed after
            try:
                return await make()
            finally:
                await self.conn.aclose()

        return run_sync(closing)

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
        self,
        site: str,
        fn: UpdateFn,
        profile: str = DEFAULT_PROFILE,
        *,
        timeout: float | None = None,
        best_effort: bool = False,
    ) -> SessionRecord | None:
        """`update` for synchronous code."""
        return self._sync(lambda: self.update(site, fn, profile, timeout=timeout, best_effort=best_effort))

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
