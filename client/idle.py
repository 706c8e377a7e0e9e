"""The idle timeout of a connection's repeated waits for data, with one timer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

__all__ = ["IdleWatch"]

T = TypeVar("T")


class IdleWatch:
    """The idle timeout of one connection's waits for data.

    A stream waits once per network read, and a timer per wait (``asyncio.timeout``) costs as
    much as the wait itself: one timer here, re-armed when it fires before the current wait's
    deadline, cancels a wait that outlived it; the wait then raises :class:`TimeoutError`. A
    cancellation from elsewhere stays a cancellation."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiter: asyncio.Task[Any] | None = None  # the task waiting, if one is
        self._deadline = 0.0  # when its wait times out
        self._expired = False  # the timer cancelled its wait
        self._timer: asyncio.TimerHandle | None = None

    async def wait(self, awaitable: Awaitable[T], timeout: float, what: str) -> T:
        """``await awaitable``; :class:`TimeoutError` ("no ``what`` for ...") after ``timeout`` s."""
        loop = self._loop
        self._deadline = loop.time() + timeout
        if self._timer is None:
            self._timer = loop.call_at(self._deadline, self._check)
        self._waiter, self._expired = asyncio.current_task(), False
        try:
            return await awaitable
        except asyncio.CancelledError:
            if self._expired and self._waiter is not None and self._waiter.uncancel() == 0:
                raise TimeoutError(f"no {what} for {timeout:g} s") from None
            raise
        finally:
            self._waiter = None

    def close(self) -> None:
        """Stop the timer (the connection is done)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        self._timer = None
        if self._waiter is None:
            return  # no wait now: the next one arms the timer
        if self._loop.time() >= self._deadline:
            self._expired = True
            self._waiter.cancel()
        else:
            self._timer = self._loop.call_at(self._deadline, self._check)
