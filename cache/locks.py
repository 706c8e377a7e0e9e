"""Cache locks: `filelock.FileLock` plus a record of who holds them.

filelock may truncate or rewrite the lock file itself, so the holder's pid goes into a
sidecar `<lock>.holder`, written right after the lock is taken and removed right before it
is released: while it exists it names the current holder (or, after a SIGKILL, the dead
one, until the next holder overwrites it). A timeout raises `CacheLockTimeout` with it.

Each `CacheLock` is one acquisition with its own file descriptor, so locks exclude other
threads of the same process as well as other processes, and are not reentrant.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import weakref
from pathlib import Path
from types import TracebackType
from typing import Self

import filelock

from .errors import CacheLockTimeout, CacheWriteError
from .paths import FILE_MODE, create_private

POLL_INTERVAL = 0.002
MAX_ASYNC_POLL = 0.05
# The async waiters of one process queue here first (per loop and lock file): only the first
# polls the file, and the next takes over the moment it is released.
LoopLocks = weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[object, asyncio.Lock]]
_QUEUES: LoopLocks = weakref.WeakKeyDictionary()


def loop_lock(registry: LoopLocks, key: object) -> asyncio.Lock:
    """The running loop's in-memory lock for ``key`` in ``registry``, made on first use."""
    return registry.setdefault(asyncio.get_running_loop(), {}).setdefault(key, asyncio.Lock())


def holder_path(lock_path: Path) -> Path:
    return lock_path.with_name(lock_path.name + ".holder")


def read_holder(lock_path: Path) -> int | None:
    """The pid recorded as holding `lock_path`, if any."""
    try:
        return int(holder_path(lock_path).read_text().strip())
    except (OSError, ValueError):
        return None


class CacheLock:
    """An exclusive, inter-process lock on `path`, taken within `timeout` seconds (< 0: forever)."""

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self._lock = filelock.FileLock(str(path), timeout=timeout, mode=FILE_MODE, thread_local=False)
        self._queue: asyncio.Lock | None = None  # held with the file lock by acquire_async

    def acquire(self) -> None:
        """Take the lock, blocking the calling thread; raises `CacheLockTimeout`."""
        try:
            self._lock.acquire(timeout=self.timeout, poll_interval=POLL_INTERVAL)
        except filelock.Timeout:
            raise CacheLockTimeout(self.path, self.timeout, read_holder(self.path)) from None
        except OSError as exc:  # the lock file cannot be created: read-only, full, no permission
            raise CacheWriteError(self.path, exc, "create the lock") from None
        self._mark_holder()

    def _mark_holder(self) -> None:
        """Write this process's pid into the sidecar of the lock just taken.

        Only informative: if it cannot be written (a full disk), the lock is held all the same,
        and no empty or partial holder file is left."""
        path = holder_path(self.path)
        try:
            fd = create_private(path, exclusive=False)
            try:
                data = f"{os.getpid()}\n".encode()
                if os.write(fd, data) != len(data):
                    raise OSError("short write")
            finally:
                os.close(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(path)
        except BaseException:
            self._lock.release()
            raise

    def release(self) -> None:
        try:
            os.unlink(holder_path(self.path))
        except OSError:
            pass  # none was written (see _mark_holder), or it cannot be removed: it is only informative
        finally:
            self._lock.release()
            queue, self._queue = self._queue, None
            if queue is not None:
                queue.release()

    async def acquire_async(self) -> None:
        """Take the lock without blocking the event loop, or a worker thread, while waiting.

        The waiters of this process take turns, in order, on an in-memory lock; the first
        retries a non-blocking attempt on the file after a pause that grows to
        `MAX_ASYNC_POLL` (waiting in the loop's default executor would let waiters take every
        thread and starve the holder's own file I/O: a deadlock). A cancelled waiter holds
        nothing.
        """
        loop = asyncio.get_running_loop()
        deadline = None if self.timeout < 0 else loop.time() + self.timeout
        queue = loop_lock(_QUEUES, self.path)
        try:
            async with asyncio.timeout_at(deadline):
                await queue.acquire()
        except TimeoutError:
            raise CacheLockTimeout(self.path, self.timeout, read_holder(self.path)) from None
        try:
            await self._poll(loop, deadline)
        except BaseException:
            queue.release()
            raise
        self._queue = queue

    async def _poll(self, loop: asyncio.AbstractEventLoop, deadline: float | None) -> None:
        """Take the file lock, retrying a non-blocking attempt after a growing pause."""
        pause = POLL_INTERVAL
        while True:
            try:
                self._lock.acquire(blocking=False)
                break
            except OSError as exc:
                if not isinstance(exc, filelock.Timeout):
                    raise CacheWriteError(self.path, exc, "create the lock") from None
                left = None if deadline is None else deadline - loop.time()
                if left is not None and left <= 0:
                    raise CacheLockTimeout(self.path, self.timeout, read_holder(self.path)) from None
            await asyncio.sleep(pause if left is None else min(pause, left))
            pause = min(pause * 2, MAX_ASYNC_POLL)
        self._mark_holder()

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    async def __aenter__(self) -> Self:
        await self.acquire_async()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
