"""Every way a harvest can fail gives a typed error and leaves nothing behind.

The conftest's autouse fixture checks after each test that no browser process and no zombie
remains (also of the worker processes here: this process is their browsers' subreaper).
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from harvester_helpers import cache, leftovers, need_browser, sandbox, shared_sandbox
from harvestkit.cache import AuthCache
from harvestkit.cache.locks import CacheLock
from harvestkit.harvester import (
    SITES,
    BrowserDied,
    ChallengeNeedsHuman,
    HarvestTimeout,
    NeedsHuman,
    NoDisplay,
    ProfileInUse,
    SiteUnreachable,
    harvest,
    login,
    profile_dir,
)
from harvestkit.sandbox import Sandbox

__all__ = ["cache", "sandbox", "shared_sandbox"]  # fixtures
need_browser()
WORKER = Path(__file__).with_name("harvester_worker.py")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("how", ["proxy down", "host refused by the proxy", "session answers 503"])
async def test_dead_site(how: str, sandbox: Sandbox, cache: AuthCache, tmp_path: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    site, proxy, expected = "cloudflare", None, ""
    if how == "proxy down":
        proxy, expected = f"http://127.0.0.1:{closed_port()}", "ERR_PROXY_CONNECTION_FAILED"
    elif how == "host refused by the proxy":  # a third site is one more recipe, nothing else
        nowhere = dataclasses.replace(SITES["cloudflare"], name="nowhere", start_url="https://nowhere.harvestkit.test/")
        monkeypatch.setitem(SITES, "nowhere", nowhere)
        site, expected = "nowhere", "ERR_TUNNEL_CONNECTION_FAILED"
    else:
        sandbox.fault("cerebras.session", status=503)
        site, expected = "cerebras", "/api/auth/session gave HTTP 503"
    with pytest.raises(SiteUnreachable, match=expected) as caught:
        await harvest(site, proxy=proxy, cache=cache, timeout=20)
    assert caught.value.site == site and cache.get_sync(site) is None
    assert leftovers(tmp_path) == []


async def test_timeout_says_what_it_waited_for(sandbox: Sandbox, cache: AuthCache, tmp_path: Path) -> None:
    sandbox.set_knobs(challenge_delay=30)
    started = time.monotonic()
    with pytest.raises(HarvestTimeout, match="still waiting for the challenge of playground.ai.cloudflare.com"):
        await harvest("cloudflare", cache=cache, timeout=6)  # room for a loaded machine to reach the challenge
    assert 6 <= time.monotonic() - started < 20  # the harvest's own timeout, well before the 30 s challenge
    assert leftovers(tmp_path) == []


async def test_interactive_challenge_needs_a_human_at_once(sandbox: Sandbox, cache: AuthCache) -> None:
    sandbox.set_knobs(interactive_challenge=True)
    started = time.monotonic()
    with pytest.raises(ChallengeNeedsHuman, match="harvestkit login cloudflare") as caught:
        await harvest("cloudflare", cache=cache, timeout=30)
    assert isinstance(caught.value, NeedsHuman) and time.monotonic() - started < 10


async def test_browser_killed_mid_harvest(sandbox: Sandbox, cache: AuthCache, tmp_path: Path) -> None:
    sandbox.set_knobs(challenge_delay=30)
    pids: list[int] = []

    def progress(event) -> None:
        if event.step == "browser-started":
            pids.append(int(event.detail.rsplit(" ", 1)[1]))
        if event.step == "challenge-seen":
            os.kill(pids[0], signal.SIGKILL)

    with pytest.raises(BrowserDied, match="killed by signal 9 in the middle of the harvest") as caught:
        await harvest("cloudflare", cache=cache, timeout=20, progress=progress)
    assert f"pid {pids[0]}" in str(caught.value)
    assert leftovers(tmp_path) == []
    sandbox.set_knobs(challenge_delay=0.1)  # the profile the killed browser left is usable
    assert (await harvest("cloudflare", cache=cache)).cookies


async def test_cancelled_harvest_leaves_nothing(sandbox: Sandbox, cache: AuthCache, tmp_path: Path) -> None:
    sandbox.set_knobs(challenge_delay=30)
    seen = asyncio.Event()
    task = asyncio.create_task(
        harvest("cloudflare", cache=cache, progress=lambda e: e.step == "challenge-seen" and seen.set())
    )
    await asyncio.wait_for(seen.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert leftovers(tmp_path) == []
    assert not list((tmp_path / "home" / "sessions").glob("*/*.holder"))  # the refresh lock is free


async def test_profile_in_use_names_the_holder(sandbox: Sandbox, cache: AuthCache) -> None:
    lock = CacheLock(profile_dir("cloudflare", "default").with_name("default.lock"), 1)
    with lock, pytest.raises(ProfileInUse, match=f"profile 'default' in use by pid {os.getpid()}"):
        await harvest("cloudflare", cache=cache, timeout=0.3)


async def test_login_without_a_display(sandbox: Sandbox, cache: AuthCache, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    with pytest.raises(NoDisplay, match="no display here.*harvestkit cache import cerebras") as caught:
        await login("cerebras", cache=cache)
    assert isinstance(caught.value, NeedsHuman)


def worker(site: str, root: str, out: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), site, root, str(out)], env=env, stdout=subprocess.PIPE, text=True
    )


def test_processes_sharing_a_profile_run_one_browser_at_a_time(sandbox: Sandbox, tmp_path: Path) -> None:
    """A and B share a cache (single-flight: one of them harvests), C has its own cache but the same
    browser profile (the profile lock makes it wait): the browsers never overlap."""
    env = {**os.environ, "TMPDIR": tempfile.gettempdir()}
    roots = {"a": "-", "b": "-", "c": str(tmp_path / "other-cache")}
    procs = {name: worker("cloudflare", root, tmp_path / f"{name}.json", env) for name, root in roots.items()}
    for proc in procs.values():
        proc.communicate(timeout=60)
        assert proc.returncode == 0
    results = {name: json.loads((tmp_path / f"{name}.json").read_text()) for name in procs}
    assert all("harvested_at" in r for r in results.values()), results
    runs = sorted((r["browser-started"], r["browser-stopped"]) for r in results.values() if "browser-started" in r)
    assert len(runs) == 2  # C, and one of A and B
    assert runs[0][1] <= runs[1][0], f"browsers overlapped: {runs}"
    assert results["a"]["harvested_at"] == results["b"]["harvested_at"]
    assert leftovers(tmp_path) == []


def test_ctrl_c_in_a_sync_harvest_leaves_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.set_knobs(challenge_delay=30)
    env = {**os.environ, "TMPDIR": tempfile.gettempdir()}
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), "cloudflare", "-", str(tmp_path / "out.json")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "challenge-seen":
            proc.send_signal(signal.SIGINT)
            break
    _, stderr = proc.communicate(timeout=20)
    assert proc.returncode != 0 and "KeyboardInterrupt" in stderr
    assert leftovers(tmp_path) == []
