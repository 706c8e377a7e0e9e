from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from harvestkit.harvester.reaper import proc_stat

pytest_plugins = ["harvestkit.sandbox.pytest_plugin", "client_helpers"]


def chromium_processes() -> list[str]:
    """Browser processes descended from this test process (live or zombie), and our zombies."""
    me = os.getpid()
    table = {pid: stat for pid in os.listdir("/proc") if pid.isdigit() and (stat := proc_stat(pid))}

    def ours(pid: str) -> bool:
        seen = 0
        while pid in table and seen < 64:
            parent = table[pid][2]
            if parent == me:
                return True
            pid, seen = str(parent), seen + 1
        return False

    return [
        f"{pid} {state} {name}"
        for pid, (name, state, *_) in table.items()
        if ours(pid) and ("chrom" in name.lower() or state == "Z")
    ]


@pytest.fixture(autouse=True)
def no_leftover_browsers() -> Iterator[None]:
    """Every test leaves no browser process and no zombie behind."""
    yield
    left = chromium_processes()
    assert not left, f"processes left behind: {left}"
