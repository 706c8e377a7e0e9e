from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

pytest_plugins = ["harvestkit.sandbox.pytest_plugin"]


def chromium_processes() -> list[str]:
    """Browsers with a profile in the temp dir (the tests' own), and zombies among our children."""
    found = []
    me = os.getpid()
    profile_flag = ("--user-data-dir=" + tempfile.gettempdir()).encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        name = stat[stat.index(b"(") + 1 : stat.rindex(b")")].decode(errors="replace")
        fields = stat[stat.rindex(b")") + 2 :].split()
        state, ppid = fields[0].decode(), int(fields[1])
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read()
        except OSError:
            cmdline = b""
        if profile_flag in cmdline or (state == "Z" and (ppid == me or "chrom" in name)):
            found.append(f"{entry} {state} {name}")
    return found


@pytest.fixture(autouse=True)
def no_leftover_browsers() -> Iterator[None]:
    """Every test leaves no browser process and no zombie behind."""
    yield
    left = chromium_processes()
    assert not left, f"processes left behind: {left}"
