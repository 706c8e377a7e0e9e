"""A browser never outlives the harvestkit process that started it, even one killed with SIGKILL.

Three layers, each enough on its own for what it covers (Linux):

- `die_with_parent` runs in the browser's process between fork and exec: ``PR_SET_PDEATHSIG``
  makes the kernel SIGKILL the main browser process the moment its parent dies.
- `Watchdog` is a tiny process of its own (standard library only, its own session, deaf to
  SIGINT/SIGTERM/SIGHUP) that waits on a pipe from harvestkit. A normal stop tells it so; an EOF
  without that means harvestkit died: it kills the browser's process group and every process
  carrying the browser's private TMPDIR (crash handlers live in sessions of their own), removes
  that TMPDIR and the profile's Singleton links, and deletes the lock holder files naming the
  dead process.
- `recover_profile` runs at every start, with the profile's lock held: Singleton links left by a
  browser that was killed are removed (an orphaned harvestkit browser still running on the profile
  is killed first), and temporary directories of harvestkit browsers whose owner died are removed.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .reaper import proc_stat, start_ticks

PR_SET_PDEATHSIG = 1
TEMP_PREFIX = "harvestkit-chromium-"
OWNER_FILE = ".harvestkit-owner"
SINGLETON_LINKS = ("SingletonLock", "SingletonSocket", "SingletonCookie")
STOPPED = b"stopped\n"
# Chromium's disk caches in a profile: they keep response bodies (the session JSON with the demo
# key, CSRF tokens) in plain text, so they go when the browser stops
DISK_CACHES = ("Cache", "Code Cache", "GPUCache", "Service Worker/CacheStorage", "Service Worker/ScriptCache")
_WATCHDOG = Path(__file__).with_name("_watchdog.py")
_libc = None
if sys.platform.startswith("linux"):
    with contextlib.suppress(OSError):
        _libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent() -> None:
    """`preexec_fn` of the browser: SIGKILL when the parent dies (and already, if it has)."""
    if _libc is not None:
        parent = os.getppid()
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the call took effect
            os._exit(1)


def mark_owner(tmpdir: str) -> None:
    """Record in the browser's TMPDIR which process owns it (for `recover_profile` of others)."""
    with contextlib.suppress(OSError):
        Path(tmpdir, OWNER_FILE).write_text(f"{os.getpid()} {start_ticks(os.getpid())}\n")


def _alive(pid: int, ticks: int) -> bool:
    stat = proc_stat(pid)
    return stat is not None and stat.state != "Z" and (not ticks or stat.start_ticks == ticks)


def _cmdline(pid: int) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().split(b"\0")
    except OSError:
        return []


def _stale_temp_dirs(root: Path) -> list[Path]:
    stale = []
    with contextlib.suppress(OSError):
        for entry in root.iterdir():
            if not entry.name.startswith(TEMP_PREFIX) or entry.is_symlink() or not entry.is_dir():
                continue
            try:
                pid, ticks = (int(x) for x in (entry / OWNER_FILE).read_text().split())
            except (OSError, ValueError):
                continue  # not marked (yet): never guess
            if not _alive(pid, ticks):
                stale.append(entry)
    return stale


def recover_profile(profile: Path, tmpdir: str) -> None:
    """Undo what a killed harvestkit left around `profile` (the caller holds its lock), and mark
    the new browser's `tmpdir` as this process's."""
    mark_owner(tmpdir)
    lock = profile / "SingletonLock"
    with contextlib.suppress(OSError):
        if lock.is_symlink():
            _, _, pid = os.readlink(lock).rpartition("-")
            if pid.isdigit() and int(pid) != os.getpid() and _kill_orphan_browser(int(pid), profile):
                (profile / "DevToolsActivePort").unlink(missing_ok=True)  # it may have written it late
    for name in SINGLETON_LINKS:
        with contextlib.suppress(OSError):
            if (profile / name).is_symlink():
                (profile / name).unlink()
    for stale in _stale_temp_dirs(Path(tmpdir).parent):
        shutil.rmtree(stale, ignore_errors=True)


def _kill_orphan_browser(pid: int, profile: Path) -> bool:
    """Kill `pid` and its group if it is a harvestkit browser on `profile`; whether it was one."""
    stat = proc_stat(pid)
    if stat is None or stat.state == "Z":
        return False
    flag = f"--user-data-dir={profile}".encode()
    if flag not in _cmdline(pid):
        return False
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            tmp = next((v for v in handle.read().split(b"\0") if v.startswith(b"TMPDIR=")), b"")
    except OSError:
        return False
    if TEMP_PREFIX.encode() not in tmp:
        return False  # not started by harvestkit: not ours to kill
    with contextlib.suppress(OSError):
        os.killpg(stat.pgrp, signal.SIGKILL) if stat.pgrp == pid else os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 3
    while _alive(pid, stat.start_ticks) and time.monotonic() < deadline:
        time.sleep(0.01)
    return True


def scrub_profile(profile: Path | None) -> None:
    """Remove the disk caches of a stopped browser's profile (see `DISK_CACHES`)."""
    if profile is None:
        return
    for name in DISK_CACHES:
        for path in profile.glob(f"*/{name}"):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)


class Watchdog:
    """The process that cleans up after a browser whose harvestkit died (see the module)."""

    def __init__(
        self, process: subprocess.Popen[bytes], tmpdir: str, profile: Path, holders: list[str], temporary: bool
    ) -> None:
        config = {
            "owner": os.getpid(),
            "browser": process.pid,
            "browser_ticks": start_ticks(process.pid),
            "tmpdir": tmpdir,
            "profile": str(profile),
            "holders": holders,
            "temporary_profile": temporary,
        }
        self._process: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, "-I", "-S", str(_WATCHDOG), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def release(self) -> None:
        """The browser was stopped and cleaned up here: tell the watchdog, and reap it."""
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        with contextlib.suppress(OSError):
            process.stdin.write(STOPPED)
        with contextlib.suppress(OSError):
            process.stdin.close()
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def watch(process: subprocess.Popen[bytes], tmpdir: str, profile: Path, temporary: bool) -> Watchdog | None:
    """Start the watchdog of `process`; a `temporary` profile is removed too (None off Linux)."""
    if _libc is None:
        return None
    from harvestkit.cache.paths import default_root

    home = default_root().parent
    holders = [str(home / "browser" / "*" / "*.holder"), str(home / "sessions" / "*" / "*.holder")]
    try:
        return Watchdog(process, tmpdir, profile, holders, temporary)
    except OSError:
        return None
