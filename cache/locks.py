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
import os
from pathlib import Path
from types import TracebackType

import filelock

from .errors import CacheLockTimeout
from .paths import FILE_MODE, create_private

POLL_INTERVAL = 0.002


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

    def acquire(self) -> None:
        """Take the lock, blocking the calling thread; raises `CacheLockTimeout`."""
        try:
            self._lock.acquire(timeout=self.timeout, poll_interval=POLL_INTERVAL)
        except filelock.Timeout:
            raise CacheLockTimeout(self.path, self.timeout, read_holder(self.path)) from None
        try:
            fd = create_private(holder_path(self.path), exclusive=False)
            try:
                os.write(fd, f"{os.getpid()}\n".encode())
            finally:
                os.close(fd)
        except BaseException:
            self._lock.release()
            raise

    def release(self) -> None:
        try:
            os.unlink(holder_path(self.path))
        except FileNotFoundError:
            pass
        finally:
            self._lock.release()

    async def acquire_async(self) -> None:
        """Take the lock from a worker thread: the event loop keeps running while it waits.

        If the waiting task is cancelled, a lock the thread still obtains is released.
        """
        future = asyncio.get_running_loop().run_in_executor(None, self.acquire)
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            future.add_done_callback(self._release_if_acquired)
            raise

    def _release_if_acquired(self, future: asyncio.Future) -> None:
        if not future.cancelled() and future.exception() is None:
            self.release()

    def __enter__(self) -> CacheLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    async def __aenter__(self) -> CacheLock:
        await self.acquire_async()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
