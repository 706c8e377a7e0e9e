"""Pools in the command: `harvest --profile a --profile b`, the config's [pools.<site>] harvested
member by member, and `status` showing each member without secrets."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harvestkit.cache import AuthCache, SessionRecord
from harvestkit.client.pool import Budget, Limit

from client_helpers import CHROME_UA, HINTS, StandInHarvester
from test_cli import needs_browser

HARVESTKIT = [sys.executable, "-m", "harvestkit.cli"]
PROXY_PASSWORD = "pool-proxy-secret-77"


@pytest.fixture
def world(sandbox, tmp_path: Path):
    home = tmp_path / "home"
    config = tmp_path / "config.toml"
    config.write_text("")
    env = {**os.environ, **sandbox.env, "HARVESTKIT_HOME": str(home), "HARVESTKIT_CONFIG": str(config)}
    env.pop("NO_COLOR", None)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*HARVESTKIT, *args], check=False, capture_output=True, text=True, timeout=120, env=env)

    return run, home, config


def test_harvest_takes_several_profiles_and_harvests_each(sandbox, world) -> None:
    needs_browser()
    run, home, _ = world
    result = run("harvest", "cloudflare", "--profile", "a", "--profile", "b")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("ok   cloudflare/a: 2 cookies") and lines[1].startswith("ok   cloudflare/b:")
    cache = AuthCache(home / "sessions")
    first, second = cache.get_sync("cloudflare", "a"), cache.get_sync("cloudflare", "b")
    assert first.proxy == second.proxy == sandbox.proxy_url  # each bound to the proxy it came through
    assert first.cookie_jar("https://playground.ai.cloudflare.com/")["cf_clearance"] != second.cookie_jar(
        "https://playground.ai.cloudflare.com/")["cf_clearance"]  # two sessions, not one copied


def test_status_shows_each_pool_member_without_secrets(world) -> None:
    run, home, config = world
    proxy = f"http://pooluser:{PROXY_PASSWORD}@127.0.0.1:3128"
    config.write_text(f'[pools.cerebras]\nmembers = [{{ profile = "a", proxy = "{proxy}" }}, "b", "c"]\n')
    os.chmod(config, 0o600)
    cache = AuthCache(home / "sessions")
    now = time.time()
    cooling = Budget({"tokens-minute": Limit(0, 60000, now + 40)}, now, now + 40, "rate limited")
    cache.put_sync(SessionRecord("cerebras", "a", api_key="csk-" + "a" * 40, proxy=proxy,
                                 extra={"pool": cooling.to_dict()}))  # fmt: skip
    cache.put_sync(SessionRecord("cerebras", "b", api_key="csk-" + "b" * 40, expires_at=now - 5))
    shown = run("status")
    assert shown.returncode == 0, shown.stderr
    pool_table = shown.stdout.split("\n\n")[0].splitlines()
    assert pool_table[0].split() == ["POOL", "PROFILE", "PROXY", "SESSION", "COOLING", "DOWN", "BUDGET", "LEFT", "REMAINING"]
    rows = {line.split()[1]: line for line in pool_table[1:]}
    assert re.match(r"cerebras +a +127\.0\.0\.1:3128 +fresh +until \d\d:\d\d:\d\d \(rate limited\) +0% +tokens-minute 0$", rows["a"])
    assert re.match(r"cerebras +b +- +expired +- +100% +-$", rows["b"])
    assert re.match(r"cerebras +c +- +missing or stale +-", rows["c"])
    as_json = json.loads(run("status", "--json").stdout)
    members = {m["profile"]: m for m in as_json["pools"]}
    assert members["a"]["proxy"] == "127.0.0.1:3128" and 30 < members["a"]["cooling_for"] <= 40
    assert [s["profile"] for s in as_json["sessions"]] == ["a", "b"]
    for output in (shown.stdout + shown.stderr, json.dumps(as_json)):
        assert PROXY_PASSWORD not in output and "csk-aaaa" not in output


def test_a_bad_pool_in_the_config_is_one_line_with_the_fix(world) -> None:
    run, _, config = world
    for text, message in [
        ('[pools.cerebras]\nmembers = ["a", "a"]\n', "names the profile 'a' twice"),
        ("[pools.openai]\nmembers = ['a']\n", "unknown site [pools.openai] (known: cerebras, cloudflare)"),
        ("[pools.cerebras]\nmembers = [{ profile = 'a', proxi = 'x' }]\n", "unknown setting proxi (known: profile, proxy)"),
        (f"[pools.cerebras]\nmembers = [{{ profile = 'a', proxy = 'http://u:{PROXY_PASSWORD}@h:1' }}]\n", "chmod 600"),
    ]:
        config.write_text(text)
        os.chmod(config, 0o644)
        result = run("status")
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and PROXY_PASSWORD not in result.stderr


def test_refresh_renews_each_pool_member_that_is_due(sandbox, world) -> None:
    needs_browser()
    run, home, config = world
    config.write_text('[pools.cloudflare]\nmembers = ["a", "b"]\n')
    os.environ["HARVESTKIT_HOME"] = str(home)
    try:
        asyncio.run(StandInHarvester(sandbox)("cloudflare", profile="a", proxy=sandbox.proxy_url, cache=AuthCache()))
    finally:
        del os.environ["HARVESTKIT_HOME"]
    result = run("refresh", "--margin", "1m", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["refreshed"] == ["cloudflare/b"] and list(summary["fresh"]) == ["cloudflare/a"]
    assert AuthCache(home / "sessions").get_sync("cloudflare", "b").proxy == sandbox.proxy_url


def test_chat_uses_the_configs_pool_and_moves_past_a_rate_limited_member(sandbox, world) -> None:
    run, home, config = world
    config.write_text('[pools.cerebras]\nmembers = ["a", "b"]\n')
    cache, keys = AuthCache(home / "sessions"), {}
    for profile in "ab":
        keys[profile] = key = f"csk-cli{profile}{secrets.token_hex(12)}"
        sandbox.accounts.add_key(key)
        cache.put_sync(SessionRecord("cerebras", profile, user_agent=CHROME_UA, client_hints=dict(HINTS), api_key=key))
    sandbox.set_knobs(rate_limited_keys=[keys["a"]], rate_limit_reset=30.0)
    result = run("chat", "-m", "gpt-oss-120b", "Hello pool")
    assert result.returncode == 0 and result.stdout.startswith("Sandbox reply to: Hello pool"), result.stderr
    used = [(r.headers["authorization"].partition(" ")[2], r.status) for r in sandbox.requests("api.cerebras.ai", "/v1/chat/completions")]
    assert used == [(keys["a"], 429), (keys["b"], 200)]
