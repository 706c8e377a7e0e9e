from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

pytest_plugins = ["harvestkit.sandbox.pytest_plugin", "client_helpers"]


def _stat(pid: str) -> tuple[str, str, int] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    name = stat[stat.index(b"(") + 1 : stat.rindex(b")")].decode(errors="replace")
    fields = stat[stat.rindex(b")") + 2 :].split()
    return name, fields[0].decode(), int(fields[1])


def chromium_processes() -> list[str]:
    """Browser processes descended from this test process (live or zombie), and our zombies."""
    me = os.getpid()
    table = {pid: stat for pid in os.listdir("/proc") if pid.isdigit() and (stat := _stat(pid))}

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
        for pid, (name, state, _) in table.items()
        if ours(pid) and ("chrom" in name.lower() or state == "Z")
    ]


@pytest.fixture(autouse=True)
def no_leftover_browsers() -> Iterator[None]:
    """Every test leaves no browser process and no zombie behind."""
    yield
    left = chromium_processes()
    assert not left, f"processes left behind: {left}"
