"""The product's callers on a Redis store: the commands, the config file, the client library, and
the sync path's connection reuse. Each command runs in a subprocess, as a user runs it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harvestkit.cache import (
    AuthCache,
    RedisStore,
    SessionRecord,
    StoreConfigError,
    StoreUnavailable,
    open_store,
    store_url,
    use_config,
)
from harvestkit.client import Settings
from redis_helpers import PASSWORD, no_leftover_redis, redis_server  # noqa: F401 - fixtures
from test_cache_cookiefiles import COOKIES_TXT

HARVESTKIT = [sys.executable, "-m", "harvestkit.cli"]


def harvestkit(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HARVESTKIT, *args], check=False, capture_output=True, text=True, timeout=60, env=env)


@pytest.fixture
def env(tmp_path: Path, redis_server, monkeypatch) -> dict[str, str]:  # noqa: F811 - the fixture above
    """A command environment whose store is the test's Redis, with a private (empty) home."""
    monkeypatch.setenv("HARVESTKIT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HARVESTKIT_STORE", redis_server.url)
    monkeypatch.delenv("HARVESTKIT_CONFIG", raising=False)
    return {**os.environ, "NO_COLOR": "1"}


def test_the_commands_read_and_write_the_redis_store(env, tmp_path):
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(COOKIES_TXT)
    done = harvestkit("cache", "import", "cerebras", str(cookies), env=env)
    assert done.returncode == 0 and "imported: cerebras/default" in done.stdout, done.stderr
    store = open_store()
    assert isinstance(store, RedisStore)
    assert f"now holds {len(store.get_sync('cerebras').cookies)} cookies" in done.stdout
    status = json.loads(harvestkit("status", "--json", env=env).stdout)
    assert [(row["site"], row["source"]) for row in status] == [("cerebras", "import")]
    assert harvestkit("cache", "export", "cerebras", env=env).stdout == store.export_cookies("cerebras")
    path = harvestkit("cache", "path", env=env).stdout
    assert f"127.0.0.1:{store.url.rsplit(':', 1)[1]}" in path and PASSWORD not in path
    doctor = harvestkit("doctor", env=env).stdout
    assert "1 session(s), shared through Redis" in doctor and PASSWORD not in doctor
    cleared = harvestkit("cache", "clear", "--all", env=env)
    assert "removed the cerebras/default session (redis://default:****@" in cleared.stdout, cleared.stderr
    assert store.list_sync() == [] and not (tmp_path / "home" / "sessions").exists()  # nothing went to files


def test_a_process_using_the_sync_store_leaves_no_socket_open_at_exit(env, tmp_path):
    """The sync methods' long-lived loop closes its connections at exit: a command, or a script
    that read a record, ends without an unclosed-connection ResourceWarning."""
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(COOKIES_TXT)
    script = "from harvestkit.cache import open_store; print(open_store().get_sync('cerebras').site)"
    for command in (["-m", "harvestkit.cli", "cache", "import", "cerebras", str(cookies)], ["-c", script], ["-m", "harvestkit.cli", "status"]):
        done = subprocess.run([sys.executable, "-W", "always", *command], capture_output=True, text=True, timeout=60, env=env)
        assert done.returncode == 0 and "ResourceWarning" not in done.stderr, (command, done.stderr[-800:])
    assert done.stdout.strip()


def test_a_store_that_is_down_is_one_line_with_no_traceback(env, redis_server):
    redis_server.stop()
    done = harvestkit("status", env=env)
    assert done.returncode != 0 and "Traceback" not in done.stderr and PASSWORD not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and f"127.0.0.1:{redis_server.port}" in done.stderr


def config(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_the_config_file_names_the_store_and_the_environment_wins(redis_server, tmp_path, monkeypatch):
    monkeypatch.setenv("HARVESTKIT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HARVESTKIT_STORE", raising=False)
    path = config(tmp_path, f'[sessions]\nstore = "{redis_server.url}"\n')
    monkeypatch.setenv("HARVESTKIT_CONFIG", str(path))
    assert store_url() == redis_server.url and isinstance(open_store(), RedisStore)
    open_store().put_sync(SessionRecord("cerebras", expires_at=time.time() + 600))
    env = {**os.environ, "NO_COLOR": "1"}
    assert [row["site"] for row in json.loads(harvestkit("status", "--json", env=env).stdout)] == ["cerebras"]
    monkeypatch.setenv("HARVESTKIT_STORE", f"file://{tmp_path}/files")  # the environment wins
    assert isinstance(open_store(), AuthCache) and open_store().root == tmp_path / "files"
    monkeypatch.delenv("HARVESTKIT_STORE")
    path.write_text('[sessions]\nstore = "redis://127.0.0.1:1/0"\nstorage = "x"\n')  # a typo is refused
    with pytest.raises(StoreConfigError, match=r"unknown setting sessions.storage \(known: .*store"):
        open_store()
    path.write_text(f'[sessions]\nstore = "{redis_server.url}"\n')
    path.chmod(0o644)  # its password must not be readable by others
    with pytest.raises(StoreConfigError, match="holds the session store's password and is readable by others") as info:
        open_store()
    assert PASSWORD not in str(info.value) and "chmod 600" in str(info.value)


def test_serve_config_names_the_store_of_its_process(redis_server, tmp_path, monkeypatch):
    from harvestkit.common.config import effective, load_config

    monkeypatch.delenv("HARVESTKIT_STORE", raising=False)
    monkeypatch.delenv("HARVESTKIT_CONFIG", raising=False)
    path = config(tmp_path, f'[sessions]\nstore = "{redis_server.url}"\n')
    chosen = effective(load_config(path), env={})
    assert chosen.store == redis_server.url and chosen.sources["store"] == "config"
    assert PASSWORD not in chosen.describe()["session store"] and "(config)" in chosen.describe()["session store"]
    assert effective(load_config(path), env={"HARVESTKIT_STORE": "redis://x:6379/1"}).store == "redis://x:6379/1"
    try:
        use_config(path)  # what `harvestkit serve --config PATH` does
        assert isinstance(open_store(), RedisStore)
    finally:
        use_config(None)


def test_the_client_and_every_caller_share_one_store_and_its_connection(env, redis_server):
    store = Settings.from_env().auth_cache()
    assert isinstance(store, RedisStore) and store is open_store() and store is Settings.from_env().auth_cache()
    store.put_sync(SessionRecord("cerebras", expires_at=time.time() + 600))
    before = redis_server.command("INFO", "stats")["total_connections_received"]
    for _ in range(50):
        assert store.get_sync("cerebras") is not None
        store.update_sync("cerebras", lambda r: r)
    assert redis_server.command("INFO", "stats")["total_connections_received"] - before <= 1


async def test_a_best_effort_cookie_merge_carries_on_unsaved_when_redis_is_down(redis_server, caplog):
    store = open_store(redis_server.url)
    await store.put(SessionRecord("cerebras", expires_at=time.time() + 600))
    merged = await store.update("cerebras", lambda r: r, best_effort=True)
    assert merged is not None and merged.site == "cerebras"  # up: stored as any update
    redis_server.stop()
    assert await store.update("cerebras", lambda r: r, best_effort=True) is None
    assert "cerebras/default" in caplog.text and "carrying on with the update unsaved" in caplog.text
    assert PASSWORD not in caplog.text
    with pytest.raises(StoreUnavailable):
        await store.update("cerebras", lambda r: r)
    await store.aclose()


async def test_hundreds_of_concurrent_calls_share_a_bounded_pool(redis_server):
    """A gateway under load: 300 requests at once each read the session and merge a cookie."""
    store = open_store(redis_server.url)
    await store.put(SessionRecord("cerebras", expires_at=time.time() + 600, extra={"n": 0}))

    def bump(record):
        record.extra["n"] += 1
        return record

    reads = await asyncio.gather(*(store.get("cerebras") for _ in range(300)))
    await asyncio.gather(*(store.update("cerebras", bump, timeout=60) for _ in range(300)))
    assert all(reads) and (await store.get("cerebras")).extra["n"] == 300
    clients = redis_server.command("CLIENT", "LIST").decode().count("\n")
    assert clients <= 33  # the pool's 32, and the command's own
    await store.aclose()


async def test_a_cancelled_update_waiting_for_this_processs_turn_does_not_leak_it(redis_server):
    store = open_store(redis_server.url)
    await store.put(SessionRecord("cerebras", expires_at=time.time() + 600))
    release = asyncio.Event()

    async def slow(record):
        await release.wait()
        return record

    first = asyncio.create_task(store.update("cerebras", slow))
    await asyncio.sleep(0.05)
    waiting = asyncio.create_task(store.update("cerebras", lambda r: r))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    release.set()
    assert (await first).site == "cerebras"
    assert await store.update("cerebras", lambda r: r, timeout=1) is not None
    await store.aclose()


async def test_the_gateway_answers_a_store_outage_with_a_503_naming_the_store(env, redis_server, sandbox, monkeypatch):
    import aiohttp
    from harvestkit.gateway import serve

    for name, value in sandbox.env.items():  # nothing may leave loopback, should a request get through
        monkeypatch.setenv(name, value)
    redis_server.stop()
    request = {"model": "cerebras/gpt-oss-120b", "messages": [{"role": "user", "content": "Hi"}]}
    async with serve(port=0) as url, aiohttp.ClientSession() as http:
        for stream in (False, True):
            async with http.post(f"{url}/v1/chat/completions", json={**request, "stream": stream}) as answer:
                body = await answer.json()
            assert answer.status == 503 and answer.headers["retry-after"] == "1", body
            assert body["error"]["code"] == "session_store_unavailable"
            assert f"127.0.0.1:{redis_server.port}" in body["error"]["message"] and PASSWORD not in json.dumps(body)


async def test_a_stopping_gateway_closes_its_redis_connections(redis_server, client_env, monkeypatch) -> None:
    """The gateway reads and updates sessions in Redis on its loop; when it stops, those
    connections are closed, not left for the process's exit."""
    import aiohttp
    from harvestkit.cache import open_store
    from harvestkit.gateway import serve

    monkeypatch.setenv("HARVESTKIT_STORE", redis_server.url)
    await client_env.harvester("cerebras", cache=open_store())

    def clients() -> int:  # the inspecting command's own connection included
        return len(redis_server.command("CLIENT", "LIST").splitlines())

    async with serve(port=0) as url, aiohttp.ClientSession() as http:
        body = {"model": "cerebras/gemma-4-31b", "messages": [{"role": "user", "content": "Hi"}]}
        async with http.post(f"{url}/v1/chat/completions", json=body) as answer:
            assert answer.status == 200, await answer.text()
        assert clients() >= 2
    assert clients() == 1
