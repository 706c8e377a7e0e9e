"""Every command against every broken cache state: one line that says what is wrong and how to fix
it, never a traceback; a read-only or full cache does not stop a chat whose session is valid.

Read-only and full disk are real: a small tmpfs is mounted as the cache's home (remounted
read-only, or filled up until writes get ENOSPC). That needs root (CAP_SYS_ADMIN); elsewhere
those two states are skipped, and said so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from client_helpers import StandInHarvester
from harvestkit.cache import AuthCache

HARVESTKIT = [sys.executable, "-m", "harvestkit.cli"]
STATES = ("mode 0644", "symlink", "schema 99", "corrupt", "read-only", "full disk")
COMMANDS = {
    "status": ["status"],
    "show": ["cache", "show", "cloudflare"],
    "export": ["cache", "export", "cloudflare"],
    "import": ["cache", "import", "cloudflare", "COOKIES"],
    "clear": ["cache", "clear", "cloudflare"],
    "clear --all": ["cache", "clear", "--all"],
    "refresh": ["refresh", "cloudflare", "--max-age", "0"],
    "harvest": ["harvest", "cloudflare"],
    "chat": ["chat", "-p", "cloudflare", "Hi"],
    "models": ["models", "-p", "cloudflare"],
    "doctor": ["doctor"],
}
# what the one line must say, per state, when a command fails
FIX = {
    "mode 0644": "chmod 600",
    "symlink": "symbolic link",
    "schema 99": "upgrade harvestkit",
    "corrupt": "",
    "read-only": "read-only",
    "full disk": "disk is full",
}


def _can_mount() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0 and sys.platform.startswith("linux")


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "2m") -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def seed(sandbox, home: Path) -> None:
    os.environ["HARVESTKIT_HOME"] = str(home)
    try:
        asyncio.run(StandInHarvester(sandbox)("cloudflare", proxy=sandbox.proxy_url, cache=AuthCache()))
    finally:
        del os.environ["HARVESTKIT_HOME"]


def fill(directory: Path) -> None:
    """Write until the file system is full."""
    with contextlib.suppress(OSError), open(directory / "filler", "wb") as handle:
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()
    with contextlib.suppress(OSError):  # the last few blocks, and the inodes of a tmpfs stay free
        for i in range(64):
            (directory / f"filler-{i}").write_bytes(b"\0" * 4096)


@contextlib.contextmanager
def broken(state: str, sandbox, tmp_path: Path) -> Iterator[Path]:
    """A HARVESTKIT_HOME holding a valid cloudflare session, then broken as `state` says."""
    home = tmp_path / "home"
    if state in ("read-only", "full disk"):
        if not _can_mount():
            pytest.skip("read-only and full-disk states need root to mount a tmpfs")
        with tmpfs(home):
            seed(sandbox, home)
            if state == "read-only":
                subprocess.run(["mount", "-o", "remount,ro", str(home)], check=True)
            else:
                fill(home)
            yield home
        return
    seed(sandbox, home)
    record = AuthCache(home / "sessions").record_path("cloudflare")
    if state == "mode 0644":
        record.chmod(0o644)
    elif state == "symlink":
        target = tmp_path / "elsewhere.json"
        record.rename(target)
        record.symlink_to(target)
    elif state == "schema 99":
        data = json.loads(record.read_text())
        data["schema_version"] = 99
        record.write_text(json.dumps(data))
    elif state == "corrupt":
        record.write_text('{"site": "cloudflare", "cookies": [')
    yield home


@pytest.fixture
def cookies_file(tmp_path: Path) -> Path:
    path = tmp_path / "cookies.txt"
    path.write_text("# Netscape HTTP Cookie File\n.ai.cloudflare.com\tTRUE\t/\tTRUE\t0\t__cf_bm\timportedvalue123\n")
    return path


def run(home: Path, sandbox, args: list[str], cookies: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **sandbox.env, "HARVESTKIT_HOME": str(home), "HARVESTKIT_BROWSER": "/nonexistent/chromium"}
    env.pop("NO_COLOR", None)
    args = [str(cookies) if a == "COOKIES" else a for a in args]
    return subprocess.run([*HARVESTKIT, *args], capture_output=True, text=True, env=env, timeout=60, check=False)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("state", STATES)
def test_every_command_answers_in_one_line(state: str, sandbox, tmp_path: Path, cookies_file: Path) -> None:
    failures = []
    with broken(state, sandbox, tmp_path) as home:
        for name, args in COMMANDS.items():
            result = run(home, sandbox, args, cookies_file)
            errors = [line for line in result.stderr.splitlines() if not line.startswith("WARNING ")]
            problem = None
            if "Traceback" in result.stderr or "unexpected" in result.stderr:
                problem = "raw error"
            elif len(errors) > 1:
                problem = "more than one line"
            elif result.returncode not in (0, 1, 3) and not (name == "doctor" and result.returncode == 1):
                problem = f"exit {result.returncode}"
            elif errors and FIX[state] and FIX[state] not in errors[0] and "browser" not in errors[0].lower():
                problem = f"no fix for {state}"
            if problem:
                failures.append(f"{name}: {problem}: exit {result.returncode}: {result.stderr.strip()[:400]}")
    assert failures == [], "\n".join(failures)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("state", ["read-only", "full disk"])
def test_a_valid_session_still_chats_on_a_read_only_or_full_cache(state: str, sandbox, tmp_path: Path, cookies_file: Path) -> None:
    sandbox.set_knobs(rotate_cookies=True)  # every response sets cookies the chat has to merge
    with broken(state, sandbox, tmp_path) as home:
        before = {p: p.read_bytes() for p in (home / "sessions").rglob("*.json")}
        result = run(home, sandbox, ["chat", "-p", "cloudflare", "Hi"], cookies_file)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip()
        warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING ")]
        assert len(warnings) == 1 and len(result.stderr.splitlines()) == 1, result.stderr
        record = str(home / "sessions" / "cloudflare")
        assert record in warnings[0] and FIX[state] in warnings[0]
        assert {p: p.read_bytes() for p in (home / "sessions").rglob("*.json")} == before  # nothing lost
        assert [p for p in home.rglob("*.holder") if p.stat().st_size == 0] == []


@pytest.mark.timeout(60)
def test_import_into_a_read_only_cache_blames_the_cache_not_the_file(sandbox, tmp_path: Path, cookies_file: Path) -> None:
    with broken("read-only", sandbox, tmp_path) as home:
        result = run(home, sandbox, ["cache", "import", "cloudflare", str(cookies_file)], cookies_file)
    assert result.returncode == 1
    assert str(cookies_file) not in result.stderr and "Read-only file system" in result.stderr, result.stderr
