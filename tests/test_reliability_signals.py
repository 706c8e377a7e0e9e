"""SIGTERM and SIGKILL of `harvestkit` at random moments leave nothing behind (scripts/chaos_browser.py
--signals, short), and what a killed run left before this fix is recovered at the next start."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from harvester_helpers import leftovers, need_browser, sandbox, shared_sandbox  # noqa: F401 - fixtures
from harvestkit.harvester import harvest
from harvestkit.harvester.browser import _short_temp_root, find_browser, import_in_background
from harvestkit.harvester.profiles import profile_dir
from harvestkit.harvester.reaper import proc_stat
from harvestkit.sandbox import Sandbox

need_browser()
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "chaos_browser.py"
HARVESTKIT = [sys.executable, "-m", "harvestkit.cli"]


@pytest.fixture(scope="module")
def chaos() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("chaos_browser_signals", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["chaos_browser_signals"] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules["chaos_browser_signals"]


@pytest.mark.timeout(240)
def test_sigterm_and_sigkill_of_every_command_leave_nothing(chaos: ModuleType) -> None:
    lines: list[str] = []
    runs, left = chaos.run_signal_chaos(runs=3, seed=17, report=lines.append)
    assert sorted(run.kind for run in runs) == sorted(
        f"{sig} {command}" for sig in ("SIGTERM", "SIGKILL") for command in ("harvest", "refresh", "chat")
    )
    assert [run for run in runs if not run.ok] == [], "\n".join(lines)
    assert left.counts() == dict.fromkeys(left.counts(), 0), left


def _wait_for_browser(pid: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in os.listdir("/proc"):
            if entry.isdigit() and (stat := proc_stat(entry)) and stat.ppid == pid and "chrom" in stat.comm:
                with contextlib.suppress(OSError), open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if b"--remote-debugging-port" in handle.read():  # not the --version probe
                        return
        time.sleep(0.01)
    raise AssertionError("the browser did not start")


def _ours(tmp_path: Path) -> list[str]:
    marker = f"TMPDIR={tmp_path}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/environ", "rb") as handle:
                    if marker in handle.read() and (stat := proc_stat(entry)) and stat.state != "Z":
                        found.append(f"{entry} {stat.comm}")
            except OSError:
                pass
    return found


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _harvest_process(sandbox: Sandbox, tmp_path: Path, background_job: bool = False) -> subprocess.Popen[str]:
    """`harvestkit harvest cloudflare`; as a script's background job (`... &`) with SIGINT ignored."""
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    sandbox.set_knobs(challenge_delay=30)
    return subprocess.Popen(
        [*HARVESTKIT, "harvest", "cloudflare", "--timeout", "40"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=_ignore_sigint if background_job else None,
    )  # fmt: skip


@pytest.mark.timeout(90)
@pytest.mark.parametrize("background_job", [False, True])
def test_sigterm_tears_down_and_exits_143(sandbox: Sandbox, tmp_path: Path, background_job: bool) -> None:
    proc = _harvest_process(sandbox, tmp_path, background_job)
    _wait_for_browser(proc.pid)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert _ours(tmp_path) == [] and leftovers(tmp_path) == []


# harvestkit with an import of nodriver that never finishes (what the chaos runs saw: SIGTERM of
# a refresh hung while the browser's start waited for that import in a worker thread)
STUCK_IMPORT = """
import importlib.abc, sys, threading

class Stuck(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "nodriver":
            threading.Event().wait()

sys.meta_path.insert(0, Stuck())
from harvestkit.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("command", [["harvest", "cloudflare"], ["refresh", "cloudflare", "--max-age", "0"]])
def test_sigterm_during_a_stuck_nodriver_import_tears_down_and_exits_143(
    sandbox: Sandbox, tmp_path: Path, command: list[str]
) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    proc = subprocess.Popen(
        [sys.executable, "-c", STUCK_IMPORT, *command, "--timeout", "60"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        _wait_for_browser(proc.pid)
        deadline = time.monotonic() + 20  # until the browser has written its port: start() then
        while not (profile_dir("cloudflare", "default") / "DevToolsActivePort").exists() and time.monotonic() < deadline:
            time.sleep(0.01)  # waits for nothing but the import
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)  # before the fix: hung here, for ever
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert _ours(tmp_path) == [] and leftovers(tmp_path) == []


async def test_a_background_import_hands_its_error_to_the_waiter_and_nothing_to_a_stopped_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("broken_waited", "broken_abandoned"):
        (tmp_path / f"{name}.py").write_text("import time\ntime.sleep(0.2)\nraise ImportError('broken on purpose')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError, match="broken on purpose"):
        await import_in_background("broken_waited")
    abandoned = import_in_background("broken_abandoned")
    abandoned.cancel()  # what a stop does: nobody waits for the import any more
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        await asyncio.sleep(0.6)  # the import fails meanwhile
        gc.collect()
    assert caplog.records == []  # no "exception was never retrieved", no callback error


@pytest.mark.timeout(90)
def test_after_sigkill_the_browser_dies_too(sandbox: Sandbox, tmp_path: Path) -> None:
    proc = _harvest_process(sandbox, tmp_path)
    _wait_for_browser(proc.pid)
    time.sleep(0.3)
    proc.kill()
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 60  # the watchdog's clean-up, on a loaded machine too
    while (_ours(tmp_path) or leftovers(tmp_path)) and time.monotonic() < deadline:
        _reap_children()  # what the killed process left is re-parented here, as to init
        time.sleep(0.05)
    _reap_children()
    assert _ours(tmp_path) == []
    assert leftovers(tmp_path) == []  # temporary dirs, and the holder files naming the dead pid
    sandbox.set_knobs(challenge_delay=0.15)
    assert subprocess.run([*HARVESTKIT, "harvest", "cloudflare"], capture_output=True, timeout=60).returncode == 0


def _host() -> str:
    return socket.gethostname()


@pytest.mark.timeout(90)
async def test_an_orphaned_browser_and_its_stale_files_are_recovered(sandbox: Sandbox, tmp_path: Path) -> None:
    """What a SIGKILLed harvestkit left before the watchdog existed: its browser still running on
    the profile (SingletonLock naming it), its temporary directory, a holder naming a dead pid."""
    profile = profile_dir("cloudflare", "default")
    orphan_tmp = Path(tempfile.mkdtemp(prefix="harvestkit-chromium-", dir=_short_temp_root()))
    (orphan_tmp / ".harvestkit-owner").write_text("999999 1\n")  # an owner that is gone
    args = ["--headless=new", f"--user-data-dir={profile}", "--remote-debugging-port=0", "--no-sandbox", "about:blank"]
    orphan = subprocess.Popen(
        [find_browser(), *args], env={**os.environ, "TMPDIR": str(orphan_tmp)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while not (profile / "SingletonLock").is_symlink() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert os.readlink(profile / "SingletonLock") == f"{_host()}-{orphan.pid}"
        holder = profile.with_name("default.lock.holder")
        holder.write_text("999999\n")
        record = await harvest("cloudflare", timeout=40)
        assert record.cookies
        assert orphan.wait(timeout=5) is not None  # killed: it was harvestkit's, on this profile
        assert not orphan_tmp.exists()
        assert not holder.exists()
    finally:
        if orphan.poll() is None:
            os.killpg(orphan.pid, signal.SIGKILL)
        orphan.wait()
        _reap_children()
        shutil.rmtree(orphan_tmp, ignore_errors=True)


def _reap_children() -> None:
    """The orphan's helpers, re-parented to this process (a subreaper once it ran a browser)."""
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        mine = [e for e in os.listdir("/proc") if e.isdigit() and (s := proc_stat(e)) and s.ppid == os.getpid() and s.state == "Z"]
        if not mine:
            return
        for pid in mine:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(int(pid), os.WNOHANG)
        time.sleep(0.02)


@pytest.mark.timeout(60)
async def test_a_browser_not_started_by_harvestkit_is_never_killed(sandbox: Sandbox, tmp_path: Path) -> None:
    """A SingletonLock naming a live process that is not a harvestkit browser: the link goes, the
    process stays."""
    profile = profile_dir("cloudflare", "default")
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        os.symlink(f"{_host()}-{bystander.pid}", profile / "SingletonLock")
        record = await harvest("cloudflare", timeout=40)
        assert record.cookies and bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
