"""Running a coroutine from synchronous code, even from inside a running event loop.

Without a running loop, `asyncio.run` does it (Ctrl-C cancels the work, which tears down its
browsers or connections, then raises KeyboardInterrupt). Inside one (a notebook, a sync callback),
the calling thread is busy running that loop, so the work runs in a thread of its own with its
own loop; a KeyboardInterrupt while waiting for it cancels it and waits for its teardown.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """The result of the coroutine `make()` returns, run to completion."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())

    box: dict[str, Any] = {}
    started, finished = threading.Event(), threading.Event()

    async def main() -> T:
        box["loop"], box["task"] = asyncio.get_running_loop(), asyncio.current_task()
        started.set()
        return await make()

    def worker() -> None:
        try:
            box["result"] = asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, raised there
            box["error"] = exc
        finally:
            started.set()
            finished.set()

    threading.Thread(target=worker, name="harvestkit-sync", daemon=True).start()
    # Waiting on an Event, not Thread.join(): on Python 3.11 a join() interrupted by Ctrl-C marks
    # the thread as stopped, and a second join() would not wait for the teardown.
    try:
        finished.wait()
    except BaseException:
        started.wait()
        if "task" in box:
            with contextlib.suppress(RuntimeError):  # the loop has already finished
                box["loop"].call_soon_threadsafe(box["task"].cancel)
        finished.wait()
        raise
    if "error" in box:
        raise box["error"]
    return box["result"]


def sync_twin(function: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """A synchronous function taking the same arguments as the coroutine function `function`."""

    @functools.wraps(function)
    def twin(*args: P.args, **kwargs: P.kwargs) -> T:
        return run_sync(lambda: function(*args, **kwargs))

    twin.__name__ = twin.__qualname__ = function.__name__ + "_sync"
    twin.__doc__ = (
        f"`{function.__name__}` for synchronous code; it also works inside a running event loop "
        f"(then in a thread of its own).\n\n{function.__doc__}"
    )
    return twin
