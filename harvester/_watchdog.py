"""The browser's watchdog process (see `harvestkit.harvester.lifeline`); standard library only.

Run as ``python -I -S _watchdog.py CONFIG_JSON`` with a pipe from harvestkit on stdin. Reading it
blocks until harvestkit closes it: after "stopped" there is nothing to do; at an EOF without it,
harvestkit died and the browser it left is killed and its files removed.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import sys
import time

SINGLETON_LINKS = ("SingletonLock", "SingletonSocket", "SingletonCookie")


def _stat(pid: int | str) -> tuple[str, int, int] | None:
    """(state, process group, start ticks) of a process, None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return fields[0].decode(), int(fields[2]), int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def _carrying(marker: bytes) -> list[int]:
    """Processes whose environment holds `marker` (the browser's private TMPDIR)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/environ", "rb") as handle:
                if marker in handle.read().split(b"\0"):
                    found.append(int(entry))
    return found


def _living(pids: list[int]) -> list[int]:
    return [pid for pid in pids if (stat := _stat(pid)) is not None and stat[0] != "Z"]


def clean_up(config: dict) -> None:
    browser, ticks = config["browser"], config["browser_ticks"]
    stat = _stat(browser)
    if stat is None or stat[2] == ticks:  # the browser, or its group outliving it; not a reused pid
        with contextlib.suppress(OSError):
            os.killpg(browser, signal.SIGKILL)
    marker = f"TMPDIR={config['tmpdir']}".encode()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = _living(_carrying(marker))
        if not left:
            break
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)
    shutil.rmtree(config["tmpdir"], ignore_errors=True)
    for name in ("Cache", "Code Cache", "GPUCache", "Service Worker/CacheStorage", "Service Worker/ScriptCache"):
        for path in glob.glob(os.path.join(glob.escape(config["profile"]), "*", name)):
            shutil.rmtree(path, ignore_errors=True)
    for name in SINGLETON_LINKS:
        path = os.path.join(config["profile"], name)
        with contextlib.suppress(OSError):
            if os.path.islink(path):
                os.unlink(path)
    if config["temporary_profile"]:
        shutil.rmtree(config["profile"], ignore_errors=True)
    owner = str(config["owner"])
    for pattern in config["holders"]:
        for path in glob.glob(pattern):
            with contextlib.suppress(OSError, ValueError):
                with open(path) as handle:
                    if handle.read().strip() == owner:
                        os.unlink(path)


def main() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    config = json.loads(sys.argv[1])
    message = sys.stdin.buffer.read()
    if message.startswith(b"stopped"):
        return
    clean_up(config)


if __name__ == "__main__":
    main()
