"""Subprocess workers for the auth cache tests and benchmark.

Run as a script: `python cache_workers.py MODE ARGS...` (modes below). Imported, it offers
`Workers`, which starts them and always kills and reaps every one it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Self

WORKER = Path(__file__).resolve()


class Workers:
    """Starts worker subprocesses (of `script`, default this file); leaving the `with` block kills
    and waits for all of them."""

    def __init__(self, log_dir: Path, script: Path = WORKER) -> None:
        self.log_dir = log_dir
        self.script = script
        self.procs: list[subprocess.Popen] = []
        self._lock = threading.Lock()  # tests may start workers from several threads

    def start(self, *args: object) -> subprocess.Popen:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self._lock:
            with open(self.log_dir / f"worker-{len(self.procs)}.stderr", "w") as stderr:
                proc = subprocess.Popen(
                    [sys.executable, str(self.script), *map(str, args)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    text=True,
                )
            self.procs.append(proc)
        return proc

    def stderr_of(self, proc: subprocess.Popen) -> str:
        return (self.log_dir / f"worker-{self.procs.index(proc)}.stderr").read_text()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            proc.wait(timeout=30)
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()


def expect_line(proc: subprocess.Popen, expected: str) -> None:
    """Read one line from a worker and check it (a dead worker reads as '')."""
    line = proc.stdout.readline().strip()
    if line != expected:
        raise AssertionError(f"worker {proc.pid} said {line!r}, expected {expected!r}")


# -- the workers ------------------------------------------------------------------------------


def _wait_for_go() -> None:
    print("ready", flush=True)
    sys.stdin.readline()


def counted_updates(root: str, count: str, worker: str) -> None:
    """`count` updates of one record, each incrementing a shared and a per-worker counter."""
    from harvestkit.cache import AuthCache, SessionRecord

    def bump(record):
        record = record or SessionRecord("counter", source="import")
        record.extra["counter"] = record.extra.get("counter", 0) + 1
        record.extra[worker] = record.extra.get(worker, 0) + 1
        return record

    cache = AuthCache(root)
    _wait_for_go()
    for _ in range(int(count)):
        cache.update_sync("counter", bump)
    print("done", flush=True)


def writer(root: str) -> None:
    """Increment a counter forever, printing each value once `update` has returned."""
    from harvestkit.cache import AuthCache, Cookie, SessionRecord

    cookies = [Cookie(f"c{i}", "v" * 80, "example.com", expires=4e9) for i in range(30)]

    def bump(record):
        record = record or SessionRecord("killed", cookies=cookies, api_key="k" * 40)
        record.extra["counter"] = record.extra.get("counter", 0) + 1
        return record

    cache = AuthCache(root)
    while True:
        record = cache.update_sync("killed", bump)
        print(record.extra["counter"], flush=True)


def refresher(root: str, marker: str) -> None:
    """Wait for "go", then refresh a stale record; the harvest notes its pid in `marker`."""
    from harvestkit.cache import AuthCache, SessionRecord

    def harvest():
        with open(marker, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(0.3)
        now = time.time()
        return SessionRecord("flight", harvested_at=now, expires_at=now + 3600, extra={"by": os.getpid()})

    cache = AuthCache(root)
    _wait_for_go()
    record = cache.refresh_sync("flight", harvest, timeout=30)
    print(json.dumps(record.to_dict()), flush=True)


def holder(root: str, site: str, kind: str, seconds: str) -> None:
    """Hold the record lock (kind "") or refresh lock (kind ".refresh") for `seconds`."""
    from harvestkit.cache import AuthCache

    cache = AuthCache(root)
    with cache._lock(site, "default", 5.0, kind=kind):
        print("locked", flush=True)
        time.sleep(float(seconds))
    print("released", flush=True)


MODES = {"update": counted_updates, "writer": writer, "refresh": refresher, "hold": holder}

if __name__ == "__main__":
    MODES[sys.argv[1]](*sys.argv[2:])
