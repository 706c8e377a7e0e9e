#!/usr/bin/env python3
"""Browser chaos: harvests that succeed, time out, find the site dead, lose their browser to a
SIGKILL, are cancelled, or get Ctrl-C in a `harvestkit harvest` subprocess; then the leftovers.

Usage: python scripts/chaos_browser.py [--runs 50] [--seed 1] [--json]
       python scripts/chaos_browser.py --signals 50 [--seed 1] [--json]

`--signals N` instead runs N SIGTERM and N SIGKILL runs: `harvestkit harvest`, `refresh --max-age 0`
and a `chat` that has to harvest first, each signalled at a random moment (during start-up, the
browser's run, the save or the chat's stream). SIGTERM must end it with 143 (or 0 if it had
finished); after either signal nothing may be left once the browser's watchdog is done, no record
may be lost or damaged, and the next harvest must succeed (it also recovers what a SIGKILL leaves
in the cache: lock holder files naming the dead process). A command still running 60 s after its
signal, or leftovers still there 60 s after its exit, count as hung (a hung command's stacks are
printed); each run reports how long its exit and its clean-up took, the summary the slowest.

The harvests run one after another against a local sandbox, on one browser profile, at random
moments of each failure. Afterwards it counts what no harvest may leave behind: Chromium
processes (descendants of this script, or any carrying its private TMPDIR), zombies, temporary
directories in its private TMPDIR (browser temp dirs, temporary profiles), held profile or cache
locks and stale Singleton links in the profile. Exit status 1 if any count is not 0 or a harvest
ended in a way other than expected.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harvestkit.harvester.reaper import proc_stat

KINDS = ("success", "timeout", "dead site", "browser killed", "cancelled", "ctrl-c")
# How long a signalled command may take to exit, and its leftovers to be cleaned up, before it
# counts as hung: generous, for a loaded machine (each run reports the time it took, and the
# summary the slowest, so a slow teardown is seen without being called a hang).
HANG_DEADLINE = 60.0


@dataclasses.dataclass
class Run:
    """One harvest of the mix: what was done, how it ended, whether that was the expected end."""

    kind: str
    outcome: str
    seconds: float
    ok: bool
    exit_seconds: float | None = None  # from the signal to the command's exit
    settle_seconds: float | None = None  # from its exit until nothing of it was left


@dataclasses.dataclass
class Leftovers:
    """What must be 0 after the runs."""

    chromium_processes: list[str]
    zombies: list[str]
    temp_dirs: list[str]
    held_locks: list[str]
    singleton_links: list[str]

    def counts(self) -> dict[str, int]:
        return {name: len(value) for name, value in dataclasses.asdict(self).items()}

    @property
    def clean(self) -> bool:
        return not any(self.counts().values())


# -- what is left ----------------------------------------------------------------------------


def _carries(pid: str, marker: bytes) -> bool:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/environ", "rb") as handle:
        return marker in handle.read()
    return False


def processes(root: Path) -> tuple[list[str], list[str]]:
    """(Chromium processes and watchdogs of ours, zombies of ours)."""
    me = os.getpid()
    table = {pid: stat for pid in os.listdir("/proc") if pid.isdigit() and (stat := proc_stat(pid))}

    def descends(pid: str) -> bool:
        for _ in range(64):
            if pid not in table:
                return False
            if table[pid][2] == me:
                return True
            pid = str(table[pid][2])
        return False

    marker = f"TMPDIR={root}".encode()
    browsers, zombies = [], []
    for pid, (name, state, *_) in table.items():
        chromium = "chrom" in name.lower()
        if state == "Z" and descends(pid):  # this script is a subreaper: orphans of ours come here
            zombies.append(f"{pid} {name} (parent {table[pid].ppid})")
        elif int(pid) != me and ((chromium and descends(pid)) or _carries(pid, marker)):
            browsers.append(f"{pid} {state} {name}")  # browsers, watchdogs, harvestkit commands
    return browsers, zombies


def reap_orphans() -> None:
    """Wait for exited children of ours: as this script is a child subreaper, what a SIGKILLed
    `harvestkit` leaves is re-parented here, as it would be to init."""
    me = os.getpid()
    for pid in os.listdir("/proc"):
        if pid.isdigit() and (stat := proc_stat(pid)) and stat.ppid == me and stat.state == "Z":
            with contextlib.suppress(ChildProcessError):
                os.waitpid(int(pid), os.WNOHANG)


def leftovers(root: Path) -> Leftovers:
    browsers, zombies = processes(root)
    home = root / "home"
    return Leftovers(
        chromium_processes=browsers,
        zombies=zombies,
        temp_dirs=[str(p) for p in (root / "tmp").iterdir()],
        held_locks=[str(p) for p in [*home.glob("browser/*/*.holder"), *home.glob("sessions/*/*.holder")]],
        singleton_links=[str(p) for p in home.glob("browser/*/*/Singleton*")],
    )


# -- the harvests ------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fresh(sandbox: Any) -> None:
    """Default knobs, no faults; every clearance given so far dies, so each harvest is challenged."""
    sandbox.state.reset()
    sandbox.expire_all()


def later(seconds: float, action: Callable[[], Any]) -> None:
    asyncio.get_running_loop().call_later(seconds, action)


async def in_process(kind: str, sandbox: Any, rng: random.Random) -> tuple[str, bool]:
    """One harvest in this process; (how it ended, whether that was expected)."""
    from harvestkit.cache import AuthCache
    from harvestkit.harvester import (
        BrowserDied,
        HarvestTimeout,
        SiteUnreachable,
        harvest,
    )

    cache, proxy = AuthCache(), None
    expected: type[BaseException] | None = None
    fresh(sandbox)
    if kind == "timeout":
        sandbox.set_knobs(challenge_delay=30)
        expected, timeout = HarvestTimeout, rng.uniform(1.0, 2.0)
    elif kind == "dead site":
        expected, timeout, site = SiteUnreachable, 20.0, "cloudflare"
        if rng.random() < 0.5:
            proxy = f"http://127.0.0.1:{closed_port()}"
        else:
            sandbox.fault("cerebras.session", status=503)
    else:
        sandbox.set_knobs(challenge_delay=0.15 if kind == "success" else 30)
        timeout = 20.0
    site = "cerebras" if kind == "dead site" and proxy is None else "cloudflare"

    def progress(event: Any) -> None:
        if kind == "browser killed" and event.step == "browser-started":
            pid = int(event.detail.rsplit(" ", 1)[1])
            later(rng.uniform(0.0, 0.8), lambda: os.kill(pid, signal.SIGKILL))

    task = asyncio.create_task(harvest(site, cache=cache, proxy=proxy, timeout=timeout, progress=progress))
    if kind == "cancelled":
        later(rng.uniform(0.1, 1.5), task.cancel)
    try:
        record = await task
    except asyncio.CancelledError:
        return "CancelledError", kind == "cancelled"
    except BrowserDied as exc:
        return f"BrowserDied: {exc}"[:120], kind == "browser killed"
    except Exception as exc:  # noqa: BLE001 - judged below
        return f"{type(exc).__name__}: {exc}"[:120], expected is not None and isinstance(exc, expected)
    return f"ok: {len(record.cookies)} cookies", kind == "success"


def browser_child(pid: int) -> bool:
    """Whether process ``pid`` has a Chromium child yet."""
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := proc_stat(entry)) and stat[2] == pid and "chrom" in stat[0]:
            return True
    return False


def ctrl_c(sandbox: Any, env: dict[str, str], rng: random.Random) -> tuple[str, bool]:
    """`harvestkit harvest cloudflare` in a subprocess, SIGINT to its process group once its browser runs."""
    fresh(sandbox)
    sandbox.set_knobs(challenge_delay=30)
    command = [sys.executable, "-m", "harvestkit.cli", "harvest", "cloudflare", "--timeout", "30"]
    proc = subprocess.Popen(  # a session of its own, as a shell gives a foreground job
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 20
    while not browser_child(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    # at once (the first Chromium process is often the `chromium --version` probe), or later
    time.sleep(0.0 if rng.random() < 0.3 else rng.uniform(0.0, 0.6))
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C on a terminal does: the whole job gets it
    try:
        stdout, stderr = proc.communicate(timeout=HANG_DEADLINE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return f"still running {HANG_DEADLINE:g} s after SIGINT", False
    clean = proc.returncode == 130 and "Traceback" not in stderr
    said = f", stdout: {stdout.strip()[-200:]!r}, stderr: {stderr.strip()[-300:]!r}" if not clean else ""
    return f"exit {proc.returncode}{said}", clean


SIGNAL_COMMANDS = {
    "harvest": ["harvest", "cloudflare", "--timeout", "30"],
    "refresh": ["refresh", "cloudflare", "--max-age", "0", "--timeout", "30"],
    "chat": ["chat", "-p", "cloudflare", "Hello there"],
}


def stale_holders(root: Path) -> list[str]:
    """Lock holder files naming a process that is gone."""
    found = []
    for path in [*root.glob("home/browser/*/*.holder"), *root.glob("home/sessions/*/*.holder")]:
        with contextlib.suppress(OSError, ValueError):
            pid = int(path.read_text().strip())
            if proc_stat(pid) is None or proc_stat(pid).state == "Z":
                found.append(str(path))
    return found


def records_intact(root: Path, sites: list[str]) -> list[str]:
    """What is wrong with the records that must survive (missing, unreadable, moved aside)."""
    from harvestkit.cache import AuthCache

    cache, wrong = AuthCache(root / "home" / "sessions"), []
    for site in sites:
        try:
            if cache.get_sync(site) is None:
                wrong.append(f"{site}: missing")
        except Exception as exc:  # noqa: BLE001 - any failure to read counts
            wrong.append(f"{site}: {type(exc).__name__}: {exc}")
    wrong += [str(p) for p in root.glob("home/sessions/*/*.corrupt-*")]
    return wrong


def settle(root: Path, timeout: float = HANG_DEADLINE) -> float:
    """Wait (reaping what is re-parented here) until the watchdog of a SIGKILLed run is done; the
    seconds until nothing was left (`timeout` if something still was: `leftovers` shows what)."""
    started = time.monotonic()
    deadline, clean_since = started + timeout, None
    while time.monotonic() < deadline:
        reap_orphans()
        browsers, zombies = processes(root)
        if browsers or zombies or any((root / "tmp").iterdir()):
            clean_since = None
        elif clean_since is None:
            clean_since = time.monotonic()
        elif time.monotonic() - clean_since > 0.5:  # and stays so (a helper may exit a moment later)
            return clean_since - started
        time.sleep(0.05)
    return timeout


def seed_records(root: Path) -> None:
    """A cerebras record no run touches (it must survive every one of them)."""
    from harvestkit.cache import AuthCache, Cookie, SessionRecord

    cookie = Cookie("__Secure-authjs.session-token", "chaos-sentinel-value", ".cerebras.ai", secure=True)
    AuthCache(root / "home" / "sessions").put_sync(SessionRecord("cerebras", "default", cookies=[cookie], source="import"))


def signalled(sig: int, command: str, sandbox: Any, env: dict[str, str], root: Path, rng: random.Random) -> Run:
    """One `harvestkit COMMAND` in a subprocess, `sig` sent to it at a random moment; then the
    checks of the docstring, the next harvest included."""
    from harvestkit.cache import AuthCache

    fresh(sandbox)
    sandbox.set_knobs(challenge_delay=rng.uniform(0.1, 1.2), pace=0.02)
    if command == "chat":
        AuthCache(root / "home" / "sessions").delete_sync("cloudflare")  # so that the chat harvests
    proc = subprocess.Popen(  # a session of its own: the signal goes to harvestkit only
        [sys.executable, "-X", "faulthandler", "-m", "harvestkit.cli", *SIGNAL_COMMANDS[command]],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    if rng.random() < 0.25:  # any moment from the start, the interpreter's own start-up included
        time.sleep(rng.uniform(0.0, 1.5))
    else:  # most while the browser runs, or later (the save, the chat)
        deadline = time.monotonic() + 20
        while not browser_child(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 2.0 if command == "chat" else 1.0))
    finished_first = proc.poll() is not None
    kind, started = f"{signal.Signals(sig).name} {command}", time.monotonic()
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, sig)
    try:
        stdout, stderr = proc.communicate(timeout=HANG_DEADLINE)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # faulthandler prints where every thread is
        try:
            _, stderr = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
        settle(root)
        hung = f"still running {HANG_DEADLINE:g} s after {signal.Signals(sig).name}; stacks: {stderr[-20000:]}"
        return Run(kind, hung, 0.0, False, HANG_DEADLINE)
    exit_seconds = time.monotonic() - started
    code = proc.returncode
    if finished_first or code == 0:
        expected = code == 0
    elif sig == signal.SIGTERM:  # handled: 143; before the handler is installed: killed by it
        expected = code in (143, -signal.SIGTERM) and "Traceback" not in stderr
    else:
        expected = code == -signal.SIGKILL
    outcome = f"exit {code} after {exit_seconds:.2f} s"
    if not expected:
        outcome += f", stdout: {stdout.strip()[-200:]!r}, stderr: {stderr.strip()[-300:]!r}"
    settle_seconds = settle(root)
    outcome += f", clean {settle_seconds:.2f} s later"
    stale = stale_holders(root)
    damaged = records_intact(root, ["cerebras"])
    next_outcome, next_ok = asyncio.run(in_process("success", sandbox, rng))
    if stale:
        outcome += f"; {len(stale)} stale holder(s) before the next harvest"
    if damaged:
        outcome, expected = f"{outcome}; records: {damaged}", False
    if not next_ok:
        outcome, expected = f"{outcome}; next harvest: {next_outcome}", False
    return Run(kind, outcome, 0.0, expected, exit_seconds, settle_seconds)


def plan_signals(runs: int, seed: int) -> list[tuple[int, str]]:
    """`runs` SIGTERM and `runs` SIGKILL runs, spread over the commands, in a random order."""
    commands = list(SIGNAL_COMMANDS)
    items = [(sig, commands[i % len(commands)]) for sig in (signal.SIGTERM, signal.SIGKILL) for i in range(runs)]
    random.Random(seed).shuffle(items)
    return items


def run_signal_chaos(
    runs: int = 50, seed: int = 1, report: Callable[[str], None] = print
) -> tuple[list[Run], Leftovers]:
    """`runs` SIGTERM and `runs` SIGKILL runs (see the module's docstring) in a private TMPDIR and
    HARVESTKIT_HOME; the runs and what was left at the end."""
    from harvestkit.harvester.reaper import become_subreaper
    from harvestkit.sandbox import Sandbox

    logging.getLogger("harvestkit.sandbox").setLevel(logging.ERROR)
    become_subreaper()
    root = Path(tempfile.mkdtemp(prefix="hkchaos-", dir="/tmp"))
    (root / "tmp").mkdir()
    saved = {name: os.environ.get(name) for name in ("HARVESTKIT_HOME", "HARVESTKIT_PROXY", "HARVESTKIT_CA_BUNDLE", "TMPDIR")}
    saved_tempdir, rng, results = tempfile.tempdir, random.Random(seed), []
    try:
        with Sandbox(workdir=root / "sandbox") as sandbox:
            os.environ.update(sandbox.env, HARVESTKIT_HOME=str(root / "home"), TMPDIR=str(root / "tmp"))
            tempfile.tempdir = str(root / "tmp")
            seed_records(root)
            for index, (sig, command) in enumerate(plan_signals(runs, seed), 1):
                started = time.monotonic()
                run = signalled(sig, command, sandbox, dict(os.environ), root, rng)
                left = leftovers(root)
                if not left.clean:
                    run.ok, run.outcome = False, f"{run.outcome}; left {left}"
                run.seconds = time.monotonic() - started
                results.append(run)
                report(f"{index:3d} {run.kind:<15} {run.seconds:5.2f} s  {'ok  ' if run.ok else 'FAIL'} {run.outcome}")
        return results, leftovers(root)
    finally:
        tempfile.tempdir = saved_tempdir
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
        shutil.rmtree(root, ignore_errors=True)


def plan(runs: int, seed: int) -> list[str]:
    """``runs`` kinds, each as often as the others (give or take one), in a random order."""
    kinds = [KINDS[i % len(KINDS)] for i in range(runs)]
    random.Random(seed).shuffle(kinds)
    return kinds


def run_chaos(runs: int = 50, seed: int = 1, report: Callable[[str], None] = print) -> tuple[list[Run], Leftovers]:
    """Run the mix in a private TMPDIR and HARVESTKIT_HOME (removed afterwards); the runs and
    what was left. Every run is followed by a check, so a leftover is blamed on its run."""
    from harvestkit.harvester.reaper import become_subreaper
    from harvestkit.sandbox import Sandbox

    logging.getLogger("harvestkit.sandbox").setLevel(logging.ERROR)  # Chromium's own background calls
    become_subreaper()
    root = Path(tempfile.mkdtemp(prefix="hkchaos-", dir="/tmp"))  # short: Chromium's socket path
    (root / "tmp").mkdir()
    saved = {name: os.environ.get(name) for name in ("HARVESTKIT_HOME", "HARVESTKIT_PROXY", "HARVESTKIT_CA_BUNDLE", "TMPDIR")}
    saved_tempdir, rng, results = tempfile.tempdir, random.Random(seed), []
    try:
        with Sandbox(workdir=root / "sandbox") as sandbox:
            os.environ.update(sandbox.env, HARVESTKIT_HOME=str(root / "home"), TMPDIR=str(root / "tmp"))
            tempfile.tempdir = str(root / "tmp")
            for index, kind in enumerate(plan(runs, seed), 1):
                started = time.monotonic()
                if kind == "ctrl-c":
                    outcome, ok = ctrl_c(sandbox, dict(os.environ), rng)
                else:
                    outcome, ok = asyncio.run(in_process(kind, sandbox, rng))
                left = leftovers(root)
                if not left.clean:
                    ok, outcome = False, f"{outcome}; left {left}"
                results.append(Run(kind, outcome, time.monotonic() - started, ok))
                report(f"{index:3d} {kind:<15} {results[-1].seconds:5.2f} s  {'ok  ' if ok else 'FAIL'} {outcome}")
        return results, leftovers(root)
    finally:
        tempfile.tempdir = saved_tempdir
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--signals", type=int, default=0, help="N SIGTERM and N SIGKILL runs instead")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    args = parser.parse_args()
    started = time.monotonic()
    report = (lambda line: None) if args.json else print
    if args.signals:
        runs, left = run_signal_chaos(args.signals, args.seed, report)
    else:
        runs, left = run_chaos(args.runs, args.seed, report)
    failed = [run for run in runs if not run.ok]
    exits = [run.exit_seconds for run in runs if run.exit_seconds is not None]
    settles = [run.settle_seconds for run in runs if run.settle_seconds is not None]
    summary = {
        "runs": len(runs),
        "by_kind": dict(Counter(run.kind for run in runs)),
        "unexpected": len(failed),
        "seconds": round(time.monotonic() - started, 1),
        "slowest_exit_seconds": round(max(exits), 2) if exits else None,
        "slowest_clean_up_seconds": round(max(settles), 2) if settles else None,
        **left.counts(),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"\n{len(runs)} harvests in {summary['seconds']} s: " + ", ".join(f"{n} {k}" for k, n in summary["by_kind"].items()))
        print(f"ended as expected: {len(runs) - len(failed)}/{len(runs)}")
        if exits:
            print(f"slowest exit after the signal: {max(exits):.2f} s; slowest clean-up after the exit: {max(settles, default=0):.2f} s")
        for name, count in left.counts().items():
            print(f"{name.replace('_', ' ')}: {count}")
    return 0 if left.clean and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
