"""Regression tests from recordings: every tests/recordings/NAME.har replays in the sandbox and
harvestkit must make of it what tests/recordings/NAME.json says (scripts/recording_to_test.py
adds a case in one command)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from harvestkit.common.scrub import Scrubber, scrub_har

from harvester_helpers import need_browser
from recording_cases import load_expectations, replay

need_browser()
RECORDINGS = Path(__file__).parent / "recordings"
CASES = [
    pytest.param(path.with_suffix(".har"), case, id=f"{path.stem}-{case['kind']}-{case['site']}")
    for path in sorted(RECORDINGS.glob("*.json"))
    for case in load_expectations(path)["cases"]
]


@pytest.mark.timeout(150)
@pytest.mark.parametrize(("har", "case"), CASES)
def test_a_recording_replays_as_it_did_when_checked_in(har: Path, case: dict) -> None:
    outcome = replay(har, case)
    assert {k: v for k, v in outcome.items() if k != "unrecorded"} == case["expect"], outcome["unrecorded"]


@pytest.mark.parametrize("har", sorted(RECORDINGS.glob("*.har")), ids=lambda p: p.stem)
def test_checked_in_recordings_hold_no_secret(har: Path) -> None:
    document = json.loads(har.read_text())
    scrubber = Scrubber()
    assert scrub_har(document, scrubber) == document  # scrubbing again finds nothing left to replace
    assert scrubber.secrets == [] or all(s.startswith("hk-redacted-") for s in scrubber.secrets)


def test_there_are_recordings_of_both_sites_and_every_cloudflare_generation() -> None:
    kinds = {(case["kind"], case["site"]) for _, case in (p.values for p in CASES)}
    assert kinds == {(k, s) for k in ("harvest", "chat") for s in ("cerebras", "cloudflare")}
    names = {p.stem for p in RECORDINGS.glob("*.json")}
    assert {f"sandbox-cloudflare-chat-{g}" for g in ("agents", "ui-stream", "data-stream", "sse")} <= names
