"""A process that harvests, for the harvester's multi-process tests.

    python harvester_worker.py SITE CACHE_ROOT|- OUT_JSON

Prints each progress step as it comes (flushed); writes to OUT_JSON its pid, the wall-clock times
its browser started and stopped (if it ran one), and the record's harvested_at or the error.
"""
from __future__ import annotations

import json
import os
import sys
import time

from harvestkit.cache import AuthCache
from harvestkit.harvester import HarvestError, Progress, harvest_sync


def main() -> None:
    site, root, out = sys.argv[1:4]
    result: dict[str, object] = {"pid": os.getpid()}

    def progress(event: Progress) -> None:
        if event.step in ("browser-started", "browser-stopped"):
            result[event.step] = time.time()
        print(event.step, flush=True)

    try:
        record = harvest_sync(site, cache=AuthCache(root) if root != "-" else None, progress=progress)
        result["harvested_at"] = record.harvested_at
    except HarvestError as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    with open(out, "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
