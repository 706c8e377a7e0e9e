"""A short run of scripts/chaos_browser.py: one harvest of each kind (success, timeout, dead site,
browser SIGKILLed at a random moment, task cancelled at a random moment, Ctrl-C in a `harvestkit
harvest` subprocess), each followed by a count of what was left: all must be 0.

The full run is `python scripts/chaos_browser.py --runs 50`.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from harvester_helpers import need_browser

need_browser()
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "chaos_browser.py"


@pytest.fixture(scope="module")
def chaos() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("chaos_browser", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["chaos_browser"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules["chaos_browser"]


@pytest.mark.timeout(90)
def test_every_kind_of_failed_harvest_leaves_nothing_behind(chaos: ModuleType) -> None:
    lines: list[str] = []
    runs, left = chaos.run_chaos(runs=len(chaos.KINDS), seed=337, report=lines.append)
    assert sorted(run.kind for run in runs) == sorted(chaos.KINDS)
    assert [run for run in runs if not run.ok] == [], "\n".join(lines)
    assert left.counts() == dict.fromkeys(left.counts(), 0), left
