"""Secrets stay out of every output, and cookies never cross sites."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from client_helpers import StandInHarvester
from harvestkit.cache import AuthCache, domain_match
from harvestkit.client import Cerebras, Cloudflare

HARVESTKIT = [sys.executable, "-m", "harvestkit.cli"]


async def test_cookies_never_cross_sites(client_env) -> None:
    for generation in ("agents", "data-stream"):
        client_env.sandbox.set_knobs(generation=generation)
        await Cloudflare.chat("Hi", model="@cf/meta/llama-3.1-8b-instruct-fast")
    await Cerebras.chat("Hi", model="gemma-4-31b")
    records = {r.site: r for r in client_env.cache.list_sync()}
    owner = {c.name: c for r in records.values() for c in r.cookies}
    requests = client_env.sandbox.requests()
    assert {r.host for r in requests} == {"inference.cerebras.ai", "api.cerebras.ai", "playground.ai.cloudflare.com"}
    for request in requests:
        for name in request.cookies:
            cookie = owner[name]
            assert domain_match(request.host, cookie.domain.lstrip(".")), (name, request.host)
    assert not any(r.cookies for r in requests if r.host == "api.cerebras.ai")  # the API takes a key only


def test_no_secret_in_any_output_even_verbose(sandbox, tmp_path: Path) -> None:
    home = tmp_path / "home"
    os.environ["HARVESTKIT_HOME"] = str(home)
    try:
        for site in ("cerebras", "cloudflare"):
            asyncio.run(StandInHarvester(sandbox)(site, proxy=sandbox.proxy_url, cache=AuthCache()))
    finally:
        del os.environ["HARVESTKIT_HOME"]
    cache = AuthCache(home / "sessions")
    secrets = [c.value for r in cache.list_sync() for c in r.cookies if len(c.value) >= 8]
    secrets += [r.api_key for r in cache.list_sync() if r.api_key]
    assert len(secrets) >= 4
    env = {**os.environ, **sandbox.env, "HARVESTKIT_HOME": str(home), "HARVESTKIT_NO_HARVEST": "1"}
    sandbox.expire_all()  # make the chats fail on auth too: their error paths must not leak either
    commands = [
        ["-v", "status"], ["-v", "status", "--json"], ["-v", "cache", "show", "cerebras"],
        ["-v", "chat", "Hi"], ["-v", "chat", "-p", "cloudflare", "Hi"], ["-v", "refresh", "--margin", "1m"],
        ["-v", "doctor"], ["-v", "models", "--json"],
    ]  # fmt: skip
    seen = ""
    for args in commands:
        result = subprocess.run([*HARVESTKIT, *args], check=False, capture_output=True, text=True, timeout=60, env=env)
        seen += result.stdout + result.stderr
    assert "Sandbox reply" not in seen  # the sessions were dead: every chat failed
    leaked = [secret[:6] + "..." for secret in secrets if secret in seen]
    assert leaked == []
