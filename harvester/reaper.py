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
import signal
import sys
import time
from typing import NamedTuple

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


class ProcStat(NamedTuple):
    """What /proc/<pid>/stat says of a process (the fields harvestkit uses)."""

    comm: str
    state: str
    ppid: int
    pgrp: int
    start_ticks: int  # clock ticks since boot


def proc_stat(pid: int | str) -> ProcStat | None:
    """The process's /proc stat fields, None if it is gone (or unreadable)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
        # The command name may contain spaces: the fields after ")" are fixed.
        fields = stat[stat.rindex(b")") + 2 :].split()
        comm = stat[stat.index(b"(") + 1 : stat.rindex(b")")].decode(errors="replace")
        return ProcStat(comm, fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[19]))
    except (OSError, ValueError, IndexError):
        return None


def start_ticks(pid: int) -> int:
    """When a process started, in clock ticks since boot (0 if unknown)."""
    stat = proc_stat(pid)
    return stat.start_ticks if stat else 0


def browser_children(pgid: int, since: int) -> dict[int, str]:
    """This process's children that belong to the browser of group `pgid`, with their state.

    That is the group's members, and the crash handlers Chromium starts in sessions of their own
    (re-parented here) since the browser started.
    """
    members: dict[int, str] = {}
    me = os.getpid()
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            stat = proc_stat(entry)
            if stat is None:
                continue
            comm, state, ppid, pgrp, started = stat
            if ppid == me and (pgrp == pgid or (comm.startswith("chrome_crashpad") and started >= since)):
                members[int(entry)] = state
    return members


def reap_group(pgid: int, since: int, timeout: float = 3.0) -> None:
    """Wait for every child of ours that belongs to the browser (its group already killed)."""
    if not _is_subreaper:
        return
    deadline = time.monotonic() + timeout
    killed_stragglers = False
    while True:
        members = browser_children(pgid, since)
        if not members:
            return
        for pid in members:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        if time.monotonic() > deadline - timeout / 2 and not killed_stragglers:
            for pid, state in members.items():  # crash handlers that did not follow the browser
                if state != "Z":
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
            killed_stragglers = True
        if time.monotonic() > deadline:
            return
        time.sleep(0.005)
