"""SIGTERM (what cron and systemd stop jobs with) handled as Ctrl-C is, at any moment of a command,
and never with a traceback.

Ctrl-C in `asyncio.run` cancels its main task, so browsers and connections are torn down; in
synchronous code it raises KeyboardInterrupt. SIGTERM does the same, once, except while an event
loop is cleaning up after its main task (asyncio.run cancelling the tasks left over, closing
connections): a KeyboardInterrupt raised there would land inside one of those tasks and be printed
as "Task exception was never retrieved", so the command is left to finish its clean-up. Either
way the command then exits 143.
"""

from __future__ import annotations

import asyncio
import functools
import signal
import sys
from types import FrameType, TracebackType
from typing import Any, Self

TERMINATED = 128 + signal.SIGTERM  # 143, what a shell reports for a job ended by SIGTERM


def _runner_main_task(handler: Any) -> asyncio.Future[Any] | None:
    """The task asyncio.run cancels on Ctrl-C, when `handler` is its SIGINT handler (on Python
    3.11 to 3.13 a partial of `asyncio.Runner._on_sigint`); None when it cannot tell."""
    if isinstance(handler, functools.partial) and isinstance(getattr(handler.func, "__self__", None), asyncio.Runner):
        task = handler.keywords.get("main_task")
        return task if isinstance(task, asyncio.Future) else None
    return None


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
        interrupt = signal.getsignal(signal.SIGINT)
        main_task = _runner_main_task(interrupt)
        if main_task is not None and main_task.done():
            return  # asyncio.run is finishing: its handler would raise inside the clean-up
        if callable(interrupt) and interrupt is not signal.default_int_handler:
            interrupt(signal.SIGINT, frame)  # asyncio.run's: cancels its main task
        elif not _loop_running():  # synchronous code (or SIGINT ignored, a background job)
            raise KeyboardInterrupt

    def _unraisable(self, unraisable: Any) -> None:
        if self.received and isinstance(unraisable.exc_value, KeyboardInterrupt):
            return  # our own interrupt, raised inside a finaliser: the command is ending anyway
        self._unraisable_hook(unraisable)
