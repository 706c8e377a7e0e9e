"""A short run of scripts/chaos_cache.py: writers SIGKILLed at random moments (4 at a time)
while a reader reads without a lock: every read parses, no acknowledged update is lost.

tests/test_cache_concurrency.py kills 200 writers one at a time and checks after each kill; this
adds kills of writers that hold or wait for the lock, and reads during the kills. The full run
is `python scripts/chaos_cache.py --kills 200`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "chaos_cache.py"


def test_killed_writers_with_a_reader_reading_meanwhile() -> None:
    command = [sys.executable, str(SCRIPT), "--kills", "24", "--json"]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)
    result = json.loads(done.stdout)
    assert done.returncode == 0, result
    assert result["kills_while_writing"] >= 12 and result["acknowledged"] >= 24 and result["reads"] > 1000
    assert result["lost_acknowledged"] == result["acknowledged_twice"] == result["unreadable"] == 0
    assert result["corrupt_files"] == 0 and result["not_0600"] == []
