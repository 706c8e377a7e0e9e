"""The `harvestkit` command end to end, in subprocesses against the sandbox: every exit code."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from client_helpers import StandInHarvester
from filelock import FileLock
from harvestkit.cache import AuthCache
from harvestkit.harvester.browser import find_browser
from harvestkit.harvester.errors import BrowserNotFound

HARVESTKIT = [sys.executable, "-m", "harvestkit.cli"]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def run(sandbox, home: Path):
    """Run the command with the sandbox's proxy and CA and a private HARVESTKIT_HOME."""

    def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None, timeout: float = 90) -> subprocess.CompletedProcess:
        environment = env if env is not None else {**os.environ, **sandbox.env, "HARVESTKIT_HOME": str(home)}
        environment.pop("NO_COLOR", None)
        return subprocess.run([*HARVESTKIT, *args], check=False, input=stdin, capture_output=True, text=True, timeout=timeout, env=environment)

    return run


def seed(sandbox, home: Path, site: str) -> None:
    """A harvested session in the private cache, without a browser."""
    os.environ["HARVESTKIT_HOME"] = str(home)
    try:
        asyncio.run(StandInHarvester(sandbox)(site, proxy=sandbox.proxy_url, cache=AuthCache()))
    finally:
        del os.environ["HARVESTKIT_HOME"]


def secrets_of(sandbox, home: Path) -> list[str]:
    cache = AuthCache(home / "sessions")
    found = [c.value for r in cache.list_sync() for c in r.cookies if len(c.value) > 8]
    return found + [r.api_key for r in cache.list_sync() if r.api_key]


def needs_browser() -> None:
    try:
        find_browser()
    except BrowserNotFound:  # pragma: no cover - CI installs Chromium
        pytest.skip("no Chromium installed")


def test_harvest_prints_a_summary_and_saves_the_session(run, sandbox, home) -> None:
    needs_browser()
    result = run("harvest", "cloudflare")
    assert result.returncode == 0, result.stderr
    assert re.match(r"ok +cloudflare: 2 cookies, expires in 30m \(\d+\.\d\d s\)$", result.stdout.strip())
    assert "browser-started" not in result.stderr  # no live progress without a terminal
    record = AuthCache(home / "sessions").get_sync("cloudflare")
    assert record and record.proxy == sandbox.proxy_url
    status = run("status")
    assert re.search(r"cloudflare +default +\d+s +30m +yes +no +2 +http://127\.0\.0\.1:\d+", status.stdout)
    for secret in secrets_of(sandbox, home):
        assert secret not in result.stdout + result.stderr + status.stdout + status.stderr


def test_harvest_shows_live_progress_on_a_terminal(run, sandbox, home) -> None:
    needs_browser()
    leader, follower = pty.openpty()
    env = {**os.environ, **sandbox.env, "HARVESTKIT_HOME": str(home)}
    with subprocess.Popen([*HARVESTKIT, "harvest", "cloudflare"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=follower, env=env, text=True) as process:  # fmt: skip
        os.close(follower)
        out, _ = process.communicate(timeout=90)
        seen = b""
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:
                break
            if not data:
                break
            seen += data
    os.close(leader)
    progress = seen.decode()
    assert process.returncode == 0
    steps = re.findall(r"(\d+\.\d\d) s  cloudflare +([a-z-]+)", progress)
    names = [name for _, name in steps]
    for step in ("browser-started", "page-loaded", "challenge-passed", "captured", "saved"):
        assert step in names
    times = [float(t) for t, _ in steps]
    assert times == sorted(times)
    assert out.startswith("ok")


def test_signed_out_cerebras_needs_a_human_and_both_sites_are_partial(run, sandbox) -> None:
    needs_browser()
    alone = run("harvest", "cerebras")
    assert alone.returncode == 3 and "harvestkit login cerebras" in alone.stdout
    both = run("harvest", "--json")
    assert both.returncode == 4
    summary = json.loads(both.stdout)
    assert summary["cloudflare"]["cookies"] == 2 and summary["cerebras"]["needs_human"] is True


def test_chat_streams_text_and_json_events(run, sandbox, home) -> None:
    seed(sandbox, home, "cerebras")
    text = run("chat", "-m", "gemma-4-31b", "Hello from the shell")
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("Sandbox reply to: Hello from the shell.") and text.stdout.endswith("\n")
    events = [json.loads(line) for line in run("chat", "--json", "--max-tokens", "5", stdin="From stdin").stdout.splitlines()]
    assert events[0] == {"type": "text", "text": "Sandbox"}
    assert [e["type"] for e in events[-2:]] == ["usage", "finish"] and events[-1]["reason"] == "length"
    assert run("chat", stdin="   ").returncode == 2


def test_chat_without_a_session_or_browser_says_what_to_do(run, sandbox, home) -> None:
    env = {**os.environ, **sandbox.env, "HARVESTKIT_HOME": str(home), "HARVESTKIT_NO_HARVEST": "1"}
    result = run("chat", "Hi", env=env)
    assert result.returncode == 3 and "harvestkit login cerebras" in result.stderr
    assert result.stdout == ""


def test_refresh_leaves_fresh_sessions_alone_and_runs_once(run, sandbox, home) -> None:
    seed(sandbox, home, "cloudflare")
    fresh = run("refresh", "--margin", "1m")
    assert fresh.returncode == 0
    summary = json.loads(fresh.stdout)  # no terminal: a machine-readable summary
    assert summary["status"] == "ok" and summary["refreshed"] == [] and list(summary["fresh"]) == ["cloudflare"]
    with FileLock(str(home / "refresh.lock")):
        busy = run("refresh", "--json")
    assert busy.returncode == 0 and json.loads(busy.stdout)["status"] == "busy"


def test_refresh_works_with_only_home_and_path(tmp_path: Path, sandbox) -> None:
    user_home = tmp_path / "user"
    data = user_home / ".local" / "share" / "harvestkit"
    seed(sandbox, data, "cloudflare")
    env = {"HOME": str(user_home), "PATH": os.environ["PATH"]}
    result = subprocess.run([*HARVESTKIT, "refresh", "--margin", "1m"], check=False, capture_output=True, text=True, timeout=60,
                            env=env, stdin=subprocess.DEVNULL)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["fresh"]["cloudflare"].startswith("fresh")


def test_refresh_harvests_what_is_due(run, sandbox, home) -> None:
    needs_browser()
    seed(sandbox, home, "cloudflare")
    result = run("refresh", "--margin", "31m")  # the clearance lasts 30 minutes: due
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["refreshed"] == ["cloudflare"]


def test_cache_commands_redact_unless_asked(run, sandbox, home, tmp_path) -> None:
    seed(sandbox, home, "cerebras")
    assert run("cache", "path").stdout.strip() == str(home / "sessions")
    record = AuthCache(home / "sessions").get_sync("cerebras")
    shown = run("cache", "show", "cerebras").stdout
    assert record.api_key not in shown and json.loads(shown)["api_key"].startswith("csk-...")
    assert record.api_key in run("cache", "show", "cerebras", "--reveal").stdout
    exported = run("cache", "export", "cerebras")
    assert exported.returncode == 0 and "__Secure-authjs.session-token" in exported.stdout
    (tmp_path / "cookies.txt").write_text(exported.stdout)
    assert run("cache", "clear", "cerebras").stdout.startswith("removed the cerebras/default session")
    imported = run("cache", "import", "cerebras", str(tmp_path / "cookies.txt"))
    assert imported.returncode == 0 and "holds" in imported.stdout
    assert run("cache", "clear").returncode == 2
    assert run("cache", "show", "cloudflare").returncode == 1


def test_models_and_doctor(run, sandbox, home) -> None:
    models = run("models", "-p", "cerebras", "--json")
    assert json.loads(models.stdout)["cerebras"]  # no session: the built-in list
    doctor = run("doctor", "--json")
    report = json.loads(doctor.stdout)
    assert report["checks"]["clock"]["ok"] and report["checks"]["proxy"]["ok"]
    assert doctor.returncode == (0 if report["ok"] else 1)


def test_usage_errors_exit_2(run) -> None:
    assert run("harvest", "openai").returncode != 0
    assert run("refresh", "--margin", "soon").returncode == 2
    assert run("login").returncode == 2


def test_a_usage_error_in_a_command_is_one_line_and_exit_code_2(capsys) -> None:
    from harvestkit.cli.common import USAGE, command, parse_duration
    from harvestkit.client import HarvestkitError
    from harvestkit.gateway import InsecureBind, check_bind

    @command
    def late(args) -> int:  # a value argparse did not check, refused by the command itself
        parse_duration("soon")
        return 0

    assert late(None) == USAGE
    assert capsys.readouterr().err == "harvestkit: not a duration: 'soon' (use e.g. 90s, 30m, 6h, 2d)\n"
    with pytest.raises(HarvestkitError, match="without an API key") as refused:  # the one root
        check_bind("0.0.0.0", None)
    assert isinstance(refused.value, InsecureBind) and isinstance(refused.value, ValueError)


def test_a_world_readable_cache_is_refused_with_the_fix(run, sandbox, home) -> None:
    seed(sandbox, home, "cloudflare")
    (home / "sessions").chmod(0o755)
    result = run("status")
    assert result.returncode == 1 and "chmod 700" in result.stderr
    (home / "sessions").chmod(0o700)
    started = time.monotonic()
    assert run("status").returncode == 0 and time.monotonic() - started < 30


def test_login_without_a_display_says_how_to_sign_in_elsewhere(run, sandbox, home) -> None:
    env = {k: v for k, v in {**os.environ, **sandbox.env, "HARVESTKIT_HOME": str(home)}.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY")}  # fmt: skip
    result = run("login", "cerebras", env=env)
    assert result.returncode == 3
    assert "display" in result.stderr.lower() and "cache import" in result.stderr


def test_refresh_renews_a_session_older_than_max_age(run, sandbox, home) -> None:
    needs_browser()
    seed(sandbox, home, "cloudflare")
    time.sleep(1.1)
    result = run("refresh", "--margin", "1m", "--max-age", "1s")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["refreshed"] == ["cloudflare"]
