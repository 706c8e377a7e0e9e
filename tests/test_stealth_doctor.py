"""`harvestkit doctor --browser`: each detector's verdict on the harvester's browser, per mode."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harvester_helpers import need_browser

need_browser()


def doctor(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HARVESTKIT_") and k != "DISPLAY"}
    environment.update(HARVESTKIT_HOME=str(tmp_path / "home"), NO_COLOR="1", **env)
    command = [sys.executable, "-m", "harvestkit.cli", "doctor", "--browser", *args]
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=240, check=False)


def test_doctor_prints_each_detectors_verdict_headless_and_headful(tmp_path: Path) -> None:
    done = doctor(tmp_path, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)["browser_check"]
    assert report["fingerprint"]["screen"] == [1920, 1080]
    modes = {m["mode"]: m for m in report["modes"]}
    assert modes["headless"]["verdict"]["passed"]
    for name in ("botd", "fpscanner", "server"):
        assert modes["headless"]["verdict"][name] == []
    headful = modes["headful"]
    assert headful["verdict"]["passed"] or "Xvfb is not installed" in headful["skipped"]
    assert headful["display"] in ("Xvfb", "") and "Traceback" not in done.stderr


def test_doctor_with_stealth_off_shows_the_flags_and_fails(tmp_path: Path) -> None:
    done = doctor(tmp_path, HARVESTKIT_STEALTH="0", TZ="UTC")
    assert done.returncode == 1
    table = done.stdout.split("browser check")[1]
    assert "stealth off (HARVESTKIT_STEALTH=0)" in table
    fpscanner = next(line for line in table.splitlines() if line.strip().startswith("fpscanner"))
    assert "flagged headlessChromeScreenResolution, hasSwiftshaderRenderer, hasUTCTimezone" in fpscanner
    assert "REFUSED" in table and "Traceback" not in done.stderr


def test_a_bad_fingerprint_setting_is_one_line(tmp_path: Path) -> None:
    done = doctor(tmp_path, HARVESTKIT_TIMEZONE="Mars/Olympus")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "FAIL fingerprint    unknown time zone 'Mars/Olympus'; use an IANA name" in done.stdout
