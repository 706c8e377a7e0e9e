"""Reaping a browser's whole process group, so that no zombie is left behind (Linux).

Chromium's zygote and helper processes can outlive the main browser process by a moment. Once the
main process is gone they are re-parented to the nearest "child subreaper", or to PID 1, which in
containers often reaps late or never. `become_subreaper()` makes this process that subreaper, and
`reap_group()` then waits for every member of the browser's group, and only those.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
_is_subreaper = False


def become_subreaper() -> bool:
    """Ask Linux to re-parent orphaned descendants to this process. False where unsupported."""
    global _is_subreaper
    if _is_subreaper:
        return True
    if not sys.platform.startswith("linux"):
        return False
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        _is_subreaper = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    return _is_subreaper


def group_children(pgid: int) -> dict[int, str]:
    """This process's children in process group `pgid`, with their state letter (Z: zombie)."""
    members: dict[int, str] = {}
    me = os.getpid()
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            with contextlib.suppress(OSError, ValueError, IndexError):
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    stat = handle.read()
                # The command name may contain spaces: the fields after ")" are fixed.
                fields = stat[stat.rindex(b")") + 2 :].split()
                state, ppid, pgrp = fields[0].decode(), int(fields[1]), int(fields[2])
                if ppid == me and pgrp == pgid:
                    members[int(entry)] = state
    return members


def reap_group(pgid: int, timeout: float = 3.0) -> None:
    """Wait for every child of ours in group `pgid` (already signalled to die)."""
    if not _is_subreaper:
        return
    deadline = time.monotonic() + timeout
    while True:
        members = group_children(pgid)
        if not members:
            return
        for pid in members:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        if time.monotonic() > deadline:
            return
        time.sleep(0.005)
