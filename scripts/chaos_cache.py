#!/usr/bin/env python3
"""Cache chaos: writer processes SIGKILLed at random moments, while a reader never stops reading.

Usage: python scripts/chaos_cache.py [--kills 200] [--parallel 4] [--seed 1] [--json]

Each writer increments a counter in one record forever (`AuthCache.update_sync`, a record with 30
cookies and a key), printing each value once `update` has returned: that value is acknowledged.
``--parallel`` writers run at once (so kills also land while a writer holds the lock or waits
for it). Four in five are SIGKILLed 0-30 ms after their first acknowledged update (in the middle
of reading, locking, writing the temp file, fsync or rename), one in five 0-300 ms after it
started (Python's start-up, or its first update). Meanwhile a reader thread reads the record without a lock, as clients do.

Checked: every read and the final file parse (no record is ever moved aside as corrupt); no
acknowledged value is lost (the final counter is at least every acknowledged value, and no value
was acknowledged twice, which a lost update would cause); files stay 0600. Exit status 1 if not.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

SITE = "killed"
EARLY = 0.2  # the share of writers killed at any moment from their start, not mid-updates


def writer(root: str) -> None:
    from harvestkit.cache import AuthCache, Cookie, SessionRecord

    cookies = [Cookie(f"c{i}", "v" * 80, "example.com", expires=4e9) for i in range(30)]

    def bump(record: SessionRecord | None) -> SessionRecord:
        record = record or SessionRecord(SITE, cookies=cookies, api_key="k" * 40)
        record.extra["counter"] = record.extra.get("counter", 0) + 1
        return record

    cache = AuthCache(root)
    while True:
        print(cache.update_sync(SITE, bump).extra["counter"], flush=True)


class Reader(threading.Thread):
    """Reads the record in a loop until stopped; counts reads and failures."""

    def __init__(self, root: Path) -> None:
        super().__init__(daemon=True)
        self.root, self.reads, self.failures = root, 0, []  # type: ignore[var-annotated]
        self.stop = threading.Event()

    def run(self) -> None:
        from harvestkit.cache import AuthCache, CacheCorruptWarning

        cache = AuthCache(self.root)
        while not self.stop.is_set():
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", CacheCorruptWarning)
                try:
                    cache.get_sync(SITE)
                except Exception as exc:  # noqa: BLE001 - every failure to read is counted
                    self.failures.append(f"{type(exc).__name__}: {exc}")
            self.failures += [str(w.message) for w in caught]
            self.reads += 1


def kill_cycles(root: Path, cycles: int, seed: int, acked: list[int], writing: list[int], lock: threading.Lock) -> None:
    """Start a writer, SIGKILL it at a random moment, collect what it acknowledged; repeat.
    ``writing`` gets a 1 for each kill that came after the writer's first acknowledgement."""
    rng = random.Random(seed)
    for _ in range(cycles):
        proc = subprocess.Popen([sys.executable, __file__, "--writer", str(root)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        first = ""
        if rng.random() < EARLY:  # anywhere from Python's start-up to the first updates
            time.sleep(rng.uniform(0.0, 0.3))
        else:  # in the middle of its updates: a read, a lock, a temp file, an fsync, a rename
            first = proc.stdout.readline()
            time.sleep(rng.uniform(0.0, 0.03))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        lines = (first + out).split("\n")[:-1]  # a cut-off last line is not an acknowledgement
        with lock:
            acked.extend(int(line) for line in lines)
            writing.append(1 if lines else 0)


def run(kills: int, parallel: int, seed: int) -> dict[str, Any]:
    from harvestkit.cache import AuthCache, SessionRecord

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="harvestkit-chaos-") as tmp:
        root = Path(tmp) / "cache"
        acked: list[int] = []
        writing: list[int] = []
        lock = threading.Lock()
        reader = Reader(root)
        reader.start()
        shares = [kills // parallel + (i < kills % parallel) for i in range(parallel)]
        threads = [threading.Thread(target=kill_cycles, args=(root, n, seed + i, acked, writing, lock)) for i, n in enumerate(shares)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        reader.stop.set()
        reader.join()
        path = AuthCache(root).record_path(SITE)
        try:
            final = SessionRecord.from_dict(json.loads(path.read_bytes())).extra["counter"]
        except Exception as exc:  # noqa: BLE001
            final, reader.failures = -1, [*reader.failures, f"final file: {exc}"]
        files = [p for p in path.parent.iterdir()]
        result = {
            "kills": kills,
            "parallel": parallel,
            "kills_while_writing": sum(writing),  # the others hit Python's start-up or the first update
            "acknowledged": len(acked),
            "final_counter": final,
            "lost_acknowledged": sum(1 for value in acked if value > final),
            "acknowledged_twice": len(acked) - len(set(acked)),
            "reads": reader.reads,
            "unreadable": len(reader.failures),
            "corrupt_files": sum(1 for p in files if ".corrupt-" in p.name),
            "stale_temp_files": sum(1 for p in files if p.name.endswith(".tmp")),  # removed by the next write
            "not_0600": [p.name for p in files if stat.S_IMODE(p.stat().st_mode) != 0o600],
            "seconds": round(time.monotonic() - started, 1),
        }
        result["failures"] = reader.failures[:5]
    return result


def main() -> int:
    if sys.argv[1:2] == ["--writer"]:
        writer(sys.argv[2])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args()
    result = run(args.kills, args.parallel, args.seed)
    ok = (
        result["final_counter"] >= 0
        and not result["lost_acknowledged"]
        and not result["acknowledged_twice"]
        and not result["unreadable"]
        and not result["corrupt_files"]
        and not result["not_0600"]
        and result["acknowledged"] > 0
    )
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['kills']} writers SIGKILLed ({result['parallel']} at a time) in {result['seconds']} s, "
            f"{result['kills_while_writing']} of them after acknowledging updates\n"
            f"{result['acknowledged']} acknowledged updates, final counter {result['final_counter']}\n"
            f"acknowledged updates lost: {result['lost_acknowledged']}, acknowledged twice: {result['acknowledged_twice']}\n"
            f"lock-free reads meanwhile: {result['reads']}, unreadable: {result['unreadable']}\n"
            f"records moved aside as corrupt: {result['corrupt_files']}, files not 0600: {len(result['not_0600'])}, "
            f"temp file of a killed write awaiting the next writer: {result['stale_temp_files']}"
        )
        for failure in result["failures"]:
            print("  " + failure)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
