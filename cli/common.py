"""What every subcommand shares: exit codes, errors, durations, terminal output.

Results go to stdout, logs and progress to stderr. Colour only on a terminal and never when
NO_COLOR is set. Errors are printed as one line, secrets redacted (the error classes redact).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import re
import sys
import warnings
from collections.abc import Callable
from typing import Any, TextIO

from harvestkit.cache.errors import HarvestkitError
from harvestkit.harvester.sites import SITES

from .termination import TERMINATED, Termination

OK, FAILURE, USAGE, NEEDS_HUMAN, PARTIAL = 0, 1, 2, 3, 4
SITE_NAMES = tuple(SITES)  # the harvester's recipes: a new site needs no change here

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


class UsageError(HarvestkitError):
    """A command line that makes no sense: one line, exit code 2."""


def parse_duration(text: str) -> float:
    """``90s``, ``30m``, ``6h``, ``2d`` or plain seconds, as seconds."""
    match = _DURATION.match(text)
    if not match:
        raise UsageError(f"not a duration: {text!r} (use e.g. 90s, 30m, 6h, 2d)")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def duration_arg(text: str) -> float:
    """argparse type for durations."""
    import argparse

    try:
        return parse_duration(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def human_duration(seconds: float | None) -> str:
    """``42s``, ``5m``, ``3h``, ``29d``; ``-`` for unknown."""
    if seconds is None:
        return "-"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{sign}{seconds / size:.0f}{unit}"
    return f"{sign}{seconds:.0f}s"


def needs_human(error: BaseException) -> bool:
    """Errors only a person can fix: sign in, solve an interactive challenge, open a display."""
    from harvestkit.client.errors import MissingCredentials

    if isinstance(error, MissingCredentials):
        return True
    harvester = sys.modules.get("harvestkit.harvester.errors")
    return harvester is not None and isinstance(error, harvester.NeedsHuman)


def exit_code_for(error: BaseException) -> int:
    if isinstance(error, UsageError):
        return USAGE
    return NEEDS_HUMAN if needs_human(error) else FAILURE


def report_error(error: BaseException, prefix: str = "harvestkit") -> int:
    """Print ``error`` as one line on stderr; the exit code it deserves."""
    if isinstance(error, HarvestkitError):
        print(f"{prefix}: {error}", file=sys.stderr)
    elif isinstance(error, OSError) and error.strerror:
        where = f" {error.filename}" if error.filename else ""
        print(f"{prefix}: cannot use{where}: {error.strerror}", file=sys.stderr)
    else:
        print(f"{prefix}: unexpected {type(error).__name__}: {error}", file=sys.stderr)
    return exit_code_for(error)


def _log_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
    """Warnings (the cache's corrupt-record notice...) as log lines, without a source line."""
    name = "harvestkit.cache" if category.__module__.startswith("harvestkit.cache") else "py.warnings"
    text = str(message)
    logging.getLogger(name).warning("%s", text.removeprefix("harvestkit: "))


def command(run: Callable[[Any], int]) -> Callable[[Any], int]:
    """Wrap a command: any failure is one line on stderr (never a traceback), warnings are log
    lines, and SIGTERM gives the clean teardown Ctrl-C gives, then exit code 143."""

    @functools.wraps(run)
    def wrapper(args: Any) -> int:
        shown = warnings.showwarning
        warnings.showwarning = _log_warning
        with Termination() as termination:
            try:
                code = run(args)
            except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C, or SIGTERM (cancels asyncio.run)
                if termination.received:
                    return TERMINATED
                raise
            except Exception as exc:  # noqa: BLE001 - every failure becomes one line and an exit code
                code = report_error(exc)
            finally:
                warnings.showwarning = shown
        return TERMINATED if termination.received else code

    return wrapper


class Style:
    """ANSI styling for one stream, off unless it is a terminal and NO_COLOR is unset."""

    def __init__(self, stream: TextIO) -> None:
        self.enabled = stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"

    def _wrap(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.enabled else text

    def good(self, text: str) -> str:
        return self._wrap("32", text)

    def bad(self, text: str) -> str:
        return self._wrap("31", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)


def print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, default=str))


def table(rows: list[list[str]], header: list[str]) -> str:
    """A plain text table with aligned columns."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)

