"""SIGTERM (what cron and systemd stop jobs with) handled as Ctrl-C is, at any moment of a command,
and never with a traceback.

Inside `asyncio.run` its main task is cancelled, so browsers and connections are torn down (as
Ctrl-C does, also when SIGINT is ignored, as in a script's background job); in synchronous code
KeyboardInterrupt stops the command. While an event loop is cleaning up after its main task
(asyncio.run cancelling the tasks left over, closing connections), an exception raised there would
land inside one of those tasks and be printed as "Task exception was never retrieved", so the
clean-up is left to finish. Either way the command then exits 143.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from types import FrameType, TracebackType
from typing import Any, Self

TERMINATED = 128 + signal.SIGTERM  # 143, what a shell reports for a job ended by SIGTERM


def _asyncio_run_task(frame: FrameType | None) -> asyncio.Task[Any] | None:
    """The main task of the `asyncio.run` the interrupted `frame` runs inside, if any: what
    asyncio.run's own Ctrl-C handler cancels (found on the stack, as asyncio.run installs no
    handler when SIGINT is ignored, as in a background job of a script)."""
    while frame is not None:
        if frame.f_code is asyncio.Runner.run.__code__:
            task = frame.f_locals.get("task")
            return task if isinstance(task, asyncio.Task) else None
        frame = frame.f_back
    return None


def _nothing() -> None:
    pass


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class Termination:
    """While entered, SIGTERM is handled as described in the module; `received` tells whether it
    came. A KeyboardInterrupt of ours that lands in a finaliser (`__del__`, a weakref callback) is
    not printed as an "Exception ignored" traceback."""

    def __init__(self) -> None:
        self.received = False
        self._previous: Any = None
        self._unraisable_hook = sys.unraisablehook

    def __enter__(self) -> Self:
        self._previous = signal.signal(signal.SIGTERM, self._handle)
        self._unraisable_hook = sys.unraisablehook
        sys.unraisablehook = self._unraisable
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        signal.signal(signal.SIGTERM, self._previous)
        sys.unraisablehook = self._unraisable_hook

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received:
            return  # the teardown is under way; a second signal must not cut it short
        self.received = True
        task = _asyncio_run_task(frame)
        if task is not None:
            if not task.done():  # done: asyncio.run is about to return
                task.cancel()  # what asyncio.run's Ctrl-C does: the main task tears down
                task.get_loop().call_soon_threadsafe(_nothing)  # wakes the loop if it waits
        elif not _loop_running():  # synchronous code: what Ctrl-C does
            raise KeyboardInterrupt

    def _unraisable(self, unraisable: Any) -> None:
        if self.received and isinstance(unraisable.exc_value, KeyboardInterrupt):
            return  # our own interrupt, raised inside a finaliser: the command is ending anyway
        self._unraisable_hook(unraisable)
