"""Running the async client from synchronous code, also inside a running event loop (Jupyter)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from harvestkit.common.syncrun import run_sync as _run

from .transport import close_loop_sessions

__all__ = ["run_sync"]

T = TypeVar("T")


def run_sync(factory: Callable[[], Awaitable[T]]) -> T:
    """Run ``factory()`` to completion on a private event loop and return its result (see
    :mod:`harvestkit.common.syncrun`); the sessions opened on that loop are closed before
    returning."""

    async def and_close() -> T:
        try:
            return await factory()
        finally:
            await close_loop_sessions()

    return _run(and_close)
