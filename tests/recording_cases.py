"""What a recording is expected to give when replayed: shared by tests/test_recordings.py and
scripts/recording_to_test.py (which writes the expectations the test then holds it to)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from harvestkit.cache import AuthCache
from harvestkit.common.har import load_har
from harvestkit.harvester.sites import SITES
from harvestkit.sandbox import Sandbox


def _harvestkit(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harvestkit.cli", *args], env=env, capture_output=True, text=True,
                          timeout=90, check=False)


def cases_in(har: Path) -> list[dict[str, Any]]:
    """The replayable cases a recording holds: a harvest per site whose start page it has."""
    urls = {(e.method, e.url) for e in load_har(har)}
    return [{"kind": "harvest", "site": name} for name, recipe in SITES.items() if ("GET", recipe.start_url) in urls]


def replay(har: Path, case: dict[str, Any]) -> dict[str, Any]:
    """Run one case against the recording in the sandbox; what harvestkit made of it."""
    with tempfile.TemporaryDirectory(prefix="harvestkit-replay-") as home, Sandbox(replay=har) as sandbox:
        env = {**os.environ, **sandbox.env, "HARVESTKIT_HOME": home}
        done = _harvestkit(env, "harvest", case["site"], "--json", "--timeout", "60")
        missing = sorted({r.note for r in sandbox.state.requests if r.status == 404 and r.note})
        record = AuthCache(Path(home) / "sessions").get_sync(case["site"])
        return {
            "exit": done.returncode,
            "error": done.stderr.strip().splitlines()[-1] if done.returncode and done.stderr.strip() else None,
            "cookies": sorted({c.name for c in record.cookies}) if record else [],
            "user_agent": bool(record and record.user_agent),  # the live browser's, not the recording's
            "api_key": bool(record and record.api_key),
            "unrecorded": missing,
        }


def expectations_for(har: Path) -> dict[str, Any]:
    """Every case of the recording with its outcome today."""
    cases = []
    for case in cases_in(har):
        outcome = replay(har, case)
        cases.append({**case, "expect": {k: v for k, v in outcome.items() if k != "unrecorded"}})
    return {"recording": har.name, "cases": cases}


def load_expectations(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())
