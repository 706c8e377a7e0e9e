"""Secrets stay out of the command's output on the paths tests/test_security.py does not run:
a real Chromium harvesting (`harvest`, `refresh`), successful verbose chats, and failures in the
middle of a harvest or a stream; and after that real use every file of the cache is 0600, every
directory of it and of the browser profiles 0700.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from client_helpers import StandInHarvester
from harvester_helpers import need_browser, sandbox, shared_sandbox
from harvestkit.cache import AuthCache
from harvestkit.sandbox import Sandbox

__all__ = ["sandbox", "shared_sandbox"]  # fixtures
need_browser()
HARVESTKIT = [sys.executable, "-m", "harvestkit.cli"]


def run_all(env: dict[str, str], *commands: list[str]) -> list[subprocess.CompletedProcess[str]]:
    """The commands, at the same time; each one's result."""
    procs = [subprocess.Popen([*HARVESTKIT, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for args in commands]  # fmt: skip
    results = []
    for args, proc in zip(commands, procs):
        stdout, stderr = proc.communicate(timeout=90)
        results.append(subprocess.CompletedProcess(args, proc.returncode, stdout, stderr))
    return results


def secrets_in(cache: AuthCache) -> set[str]:
    """Every cookie value and key the cache holds now (short values, and URLs such as Auth.js's
    callback-url cookie, are not secrets)."""
    records = cache.list_sync()
    cookies = {c.value for r in records for c in r.cookies if len(c.value) >= 8 and not c.value.startswith("http")}
    return cookies | {r.api_key for r in records if r.api_key}


def leaked(secrets: set[str], text: str, piece: int = 10) -> list[str]:
    """The secrets found in ``text`` whole or by any ``piece`` characters of theirs (redacted)."""
    return sorted(s[:4] + "..." for s in secrets if any(s[i : i + piece] in text for i in range(len(s) - piece + 1)))


def plain_copies(secrets: set[str], data: str, piece: int = 12) -> list[str]:
    """Like `leaked`, for a browser's files: pieces made of digits only (the timestamps inside
    cookie values) are not counted, as Chromium's own files are full of timestamps."""
    found = set()
    for secret in secrets:
        pieces = (secret[i : i + piece] for i in range(len(secret) - piece + 1))
        if any(not p.isdigit() and p in data for p in pieces):
            found.add(secret[:4] + "...")
    return sorted(found)


def modes(root: Path) -> dict[str, str]:
    """What is wrong with the permissions under ``root``: path -> mode."""
    wrong = {}
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_symlink():
            continue
        if (path.is_dir() and mode != 0o700) or (path.is_file() and mode != 0o600):
            wrong[str(path.relative_to(root.parent))] = oct(mode)
    return wrong


@pytest.mark.timeout(180)
def test_real_harvests_chats_and_failures_leak_nothing_and_stay_private(sandbox: Sandbox, tmp_path: Path) -> None:
    home, cache = tmp_path / "home", AuthCache()
    asyncio.run(StandInHarvester(sandbox)("cerebras", proxy=sandbox.proxy_url, cache=cache))  # a sign-in to import
    env = {**os.environ, "TMPDIR": tempfile.gettempdir()}
    secrets, results = secrets_in(cache), []

    def step(*commands: list[str]) -> list[subprocess.CompletedProcess[str]]:
        done = run_all(env, *commands)
        results.extend(done)
        secrets.update(secrets_in(cache))
        return done

    harvested = step(["-v", "harvest"])  # both sites in one real Chromium, the sign-in given to it
    chats = step(["-v", "chat", "Hi"], ["-v", "chat", "-p", "cloudflare", "Hi"])
    for site in ("cerebras", "cloudflare"):  # due now: refresh harvests both again in Chromium
        cache.update_sync(site, lambda r: dataclasses.replace(r, expires_at=time.time() - 1))
    refreshed = step(["-v", "refresh", "--json"])
    sandbox.fault("cerebras.chat", status=500, times=3)  # the first try and both retries
    sandbox.fault("cloudflare.chat", truncate_after=3)
    failed_chats = step(["-v", "chat", "Hi"], ["-v", "chat", "-p", "cloudflare", "Hi"], ["-v", "doctor"])
    sandbox.set_knobs(challenge_delay=30)
    sandbox.expire_all()
    failed_harvest = step(["-v", "harvest", "cloudflare", "--timeout", "6"])  # time for a loaded machine to start the browser

    assert [r.returncode for r in harvested + chats + refreshed] == [0, 0, 0, 0], results
    assert '"refreshed": ["cerebras", "cloudflare"]' in refreshed[0].stdout
    assert all("Sandbox reply to: Hi" in r.stdout for r in chats)
    assert [r.returncode for r in failed_chats[:2] + failed_harvest] == [1, 1, 1], results
    assert "waiting for the challenge" in failed_harvest[0].stdout
    assert "DEBUG" in harvested[0].stderr and len(secrets) >= 6  # verbose, and there were secrets to leak
    seen = "".join(r.stdout + r.stderr for r in results)
    assert leaked(secrets, seen) == []
    for path in home.rglob("*"):  # no other file (a log...) holds one; Chromium's profile does by design
        if path.is_file() and "browser" not in path.relative_to(home).parts[:1] and path.suffix != ".json":
            assert leaked(secrets, path.read_text(errors="replace")) == [], path

    assert modes(home / "sessions") == {}  # records, locks, holders 0600; directories 0700
    profiles = home / "browser"
    assert {p.name for p in profiles.glob("*/*")} >= {"default", "default.lock"}
    # browser/, browser/<site>/, each profile directory and its lock files (Chromium's own files
    # inside a profile are its business: the profile directory keeps everyone else out)
    assert {p: m for p, m in modes(profiles).items() if len(Path(p).parts) <= 3} == {}
    # harvestkit's data folder itself, and what it keeps there beside the cache (refresh.lock)
    assert {p: m for p, m in modes(home).items() if len(Path(p).parts) <= 2 and "refresh" in p or p == "home"} == {}

    # the profiles keep the sign-in (Chromium's cookie store), and no plain copy of any captured
    # secret: no disk-cached /api/auth/session with the demo key, no CSRF token, no cookie value
    keys = {r.api_key for r in cache.list_sync() if r.api_key}
    assert keys
    for path in profiles.rglob("*"):
        if path.is_file() and not path.is_symlink() and not path.name.startswith("Cookies"):
            data = path.read_bytes().decode("latin-1")
            assert plain_copies(secrets, data) == [], path
