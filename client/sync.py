"""Running the async client from synchronous code, also inside a running event loop (Jupyter)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .transport import close_loop_sessions

__all__ = ["run_sync"]

T = TypeVar("T")


async def _and_close(factory: Callable[[], Awaitable[T]]) -> T:
    try:
        return await factory()
    finally:
        await close_loop_sessions()


def run_sync(factory: Callable[[], Awaitable[T]]) -> T:
    """Run ``factory()`` to completion on a private event loop and return its result.

    Without a running loop the loop runs in this thread; inside one (a notebook, a callback
    of an async framework) it runs in a worker thread, so the caller's loop is never nested.
    The sessions opened on the private loop are closed before returning.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_and_close(factory))
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="harvestkit-sync") as pool:
        return pool.submit(asyncio.run, _and_close(factory)).result()
