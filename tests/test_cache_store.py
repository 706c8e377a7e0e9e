"""AuthCache in one process: storage, location, permissions, bad data, freshness, refresh, async."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import stat
import subprocess
import time
import warnings
from pathlib import Path

import platformdirs
import pytest
from harvestkit.cache import (
    AuthCache,
    CacheCorruptWarning,
    CacheError,
    CacheLockTimeout,
    CachePermissionError,
    CacheSchemaError,
    Cookie,
    SessionRecord,
)

API_KEY = "csk-2n9v8x7c6b5n4m3l2k1j0h9g8f7d6s5a"
SECRET = "s3cr3t-cookie-value-0123456789"


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def record(site: str = "cerebras", profile: str = "default", **fields) -> SessionRecord:
    now = time.time()
    base = {
        "harvested_at": now,
        "expires_at": now + 3600,
        "user_agent": "Mozilla/5.0 Chrome/131",
        "client_hints": {"sec-ch-ua-platform": '"Linux"'},
        "cookies": [Cookie("session", SECRET, ".cerebras.ai", expires=now + 3600, secure=True, same_site="Lax")],
        "api_key": API_KEY,
        "api_key_expires_at": now + 7200,
        "proxy": "socks5://127.0.0.1:1080",
        "source": "harvest",
        "extra": {"transport": "sse"},
    }
    return SessionRecord(site, profile, **(base | fields))


@pytest.fixture
def cache(tmp_path) -> AuthCache:
    return AuthCache(tmp_path / "cache")


def test_put_get_round_trips_every_field_and_profiles_are_separate(cache):
    default, work = record(), record(profile="work", api_key=None, proxy=None, extra={})
    cache.put_sync(default)
    cache.put_sync(work)
    assert cache.get_sync("cerebras") == default
    assert cache.get_sync("cerebras", "work") == work
    assert cache.get_sync("cloudflare") is None
    assert cache.list_sync() == [default, work]
    assert cache.delete_sync("cerebras", profile="work") is True
    assert cache.delete_sync("cerebras", profile="work") is False
    assert cache.list_sync() == [default]


def test_location_follows_root_then_env_then_platformdirs(tmp_path, monkeypatch):
    monkeypatch.setenv("HARVESTKIT_HOME", str(tmp_path / "home"))
    assert AuthCache().root == tmp_path / "home" / "sessions"
    assert AuthCache(tmp_path / "x").root == tmp_path / "x"
    monkeypatch.delenv("HARVESTKIT_HOME")
    assert AuthCache().root == Path(platformdirs.user_data_dir("harvestkit")) / "sessions"
    assert not (tmp_path / "home").exists()  # constructing a cache writes nothing


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o777])
def test_dirs_are_0700_and_files_0600_whatever_the_umask(tmp_path, monkeypatch, umask):
    monkeypatch.setenv("HARVESTKIT_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()  # parents get the umask: a 0o777 one would lock a non-root user out
    old = os.umask(umask)
    try:
        cache = AuthCache()
        cache.refresh_sync("cerebras", record)
        with cache._lock("cerebras", "default", 1.0):
            holder = cache.root / "cerebras" / "default.lock.holder"
            assert mode(holder) == 0o600
        cache.update_sync("cerebras", lambda r: r)
    finally:
        os.umask(old)
    site = cache.root / "cerebras"
    assert mode(cache.root) == mode(site) == 0o700
    assert sorted(p.name for p in site.iterdir()) == ["default.json", "default.lock", "default.refresh.lock"]
    assert all(mode(p) == 0o600 for p in site.iterdir())


def test_a_record_open_to_others_is_refused_with_the_chmod_fix(tmp_path):
    cache = AuthCache(tmp_path / "my cache")  # the fix must be a command that works as shown
    cache.put_sync(record())
    path = cache.record_path("cerebras")
    path.chmod(0o644)
    for attempt in (
        lambda: cache.get_sync("cerebras"),
        lambda: cache.update_sync("cerebras", lambda r: r),
        lambda: cache.put_sync(record()),
    ):
        with pytest.raises(CachePermissionError) as info:
            attempt()
        assert str(path) in str(info.value) and "0644" in str(info.value)
        assert info.value.fix == f"chmod 600 {shlex.quote(str(path))}" and info.value.fix in str(info.value)
    assert mode(path) == 0o644  # refused, not silently fixed
    subprocess.run(info.value.fix, shell=True, check=True)
    assert cache.get_sync("cerebras") is not None


@pytest.mark.parametrize("bad_mode", [0o755, 0o770, 0o701])
def test_a_cache_dir_open_to_others_is_refused(cache, bad_mode):
    cache.put_sync(record())
    cache.root.chmod(bad_mode)
    fix = re.escape(f"chmod 700 {shlex.quote(str(cache.root))}")
    with pytest.raises(CachePermissionError, match=f"mode is {bad_mode:04o}.*{fix}"):
        cache.get_sync("cerebras")
    with pytest.raises(CachePermissionError):
        cache.list_sync()
    cache.root.chmod(0o700)
    (cache.root / "cerebras").chmod(bad_mode)
    with pytest.raises(CachePermissionError, match="chmod 700"):
        cache.put_sync(record())


def test_a_symlinked_record_is_not_followed(cache, tmp_path):
    cache.put_sync(record())
    target = tmp_path / "elsewhere.json"
    target.write_text(cache.record_path("cerebras").read_text())
    cache.record_path("cerebras").unlink()
    cache.record_path("cerebras").symlink_to(target)
    with pytest.raises(CacheError, match="is a symbolic link"):
        cache.get_sync("cerebras")
    with pytest.raises(CacheError, match="symbolic link"):
        cache.put_sync(record())
    assert target.read_text() != ""


def _truncate(text: str) -> str:
    return text[: text.index(API_KEY) + 10]


CORRUPTIONS = {
    "truncated": _truncate,
    "garbage": lambda text: "\x00\x01 not json " + SECRET,
    "not-utf8": lambda text: text.replace(SECRET, "\udcff" + SECRET),
    "wrong-type": lambda text: text.replace('"extra": {', '"extra": [1], "x": {'),
    "missing-field": lambda text: text.replace('"user_agent"', '"user_agnet"'),
    "other-record": lambda text: text.replace('"profile": "default"', '"profile": "work"'),
    "empty": lambda text: "",
}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_a_corrupt_record_is_quarantined_once_and_reads_as_no_session(cache, kind):
    cache.put_sync(record())
    path = cache.record_path("cerebras")
    broken = CORRUPTIONS[kind](path.read_text()).encode("utf-8", "surrogateescape")
    path.write_bytes(broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cache.get_sync("cerebras") is None
        assert cache.get_sync("cerebras") is None
        assert cache.list_sync() == []
    assert len(caught) == 1 and caught[0].category is CacheCorruptWarning
    message = str(caught[0].message)
    assert "cerebras/default" in message and "moved" in message
    assert API_KEY not in message and SECRET not in message
    [moved] = path.parent.glob("default.json.corrupt-*")
    assert moved.read_bytes() == broken and mode(moved) == 0o600
    assert cache.update_sync("cerebras", lambda r: r or record(extra={"recovered": True})).extra == {"recovered": True}


def test_update_quarantines_a_corrupt_record_and_hands_fn_none(cache):
    cache.put_sync(record())
    cache.record_path("cerebras").write_text("{")
    seen = []
    with pytest.warns(CacheCorruptWarning):
        cache.update_sync("cerebras", lambda r: seen.append(r))
    assert seen == [None] and cache.get_sync("cerebras") is None


def test_a_newer_schema_is_an_error_and_the_file_is_kept(cache):
    cache.put_sync(record())
    path = cache.record_path("cerebras")
    data = json.loads(path.read_text()) | {"schema_version": 2, "new_field": 1}
    path.write_text(json.dumps(data))
    for attempt in (lambda: cache.get_sync("cerebras"), lambda: cache.update_sync("cerebras", lambda r: r), cache.list_sync):
        with pytest.raises(CacheSchemaError, match=r"schema version 2.*up to version 1") as info:
            attempt()
        assert info.value.found == 2 and info.value.supported == 1 and info.value.path == path
    assert json.loads(path.read_text()) == data
    assert not list(path.parent.glob("*.corrupt-*"))


def test_update_semantics(cache):
    created = cache.update_sync("cerebras", lambda r: r or record(extra={"n": 1}))
    assert cache.get_sync("cerebras") == created
    assert cache.update_sync("cerebras", lambda r: None) == created  # None: nothing written
    with pytest.raises(ValueError, match="expected a record for cerebras/default"):
        cache.update_sync("cerebras", lambda r: record(profile="work"))
    with pytest.raises(ValueError, match="invalid record") as info:
        cache.update_sync("cerebras", lambda r: record(harvested_at="now"))
    assert API_KEY not in str(info.value)
    with pytest.raises(TypeError):
        cache.put_sync({"site": "cerebras"})
    assert cache.get_sync("cerebras") == created


def test_a_temp_file_left_by_a_killed_writer_is_replaced_and_ignored(cache):
    cache.put_sync(record())
    leftover = cache.root / "cerebras" / ".default.json.tmp"
    leftover.write_text("half a reco")
    leftover.chmod(0o600)
    assert [r.site for r in cache.list_sync()] == ["cerebras"]
    cache.put_sync(record(extra={"v": 2}))
    assert not leftover.exists() and cache.get_sync("cerebras").extra == {"v": 2}


def test_is_fresh(cache):
    now = 1_800_000_000.0
    assert not cache.is_fresh(None)
    expiring = record(harvested_at=now - 10_000_000, expires_at=now + 60)
    assert cache.is_fresh(expiring, now=now) and cache.is_fresh(expiring, 59, now=now)
    assert not cache.is_fresh(expiring, 60, now=now)
    unknown = record(harvested_at=now - 3600, expires_at=None)
    assert cache.is_fresh(unknown, now=now)  # within the default 12 h
    assert not cache.is_fresh(unknown, 11 * 3600, now=now)
    assert not cache.is_fresh(unknown, max_age=1800, now=now)
    assert not AuthCache(cache.root, max_age=600).is_fresh(unknown, now=now)


def test_refresh_harvests_only_when_stale_or_forced(cache):
    calls = []

    def harvest():
        calls.append(1)
        return record(extra={"harvest": len(calls)})

    first = cache.refresh_sync("cerebras", harvest)
    assert cache.refresh_sync("cerebras", harvest, margin=60) == first and len(calls) == 1
    assert cache.refresh_sync("cerebras", harvest, margin=7200).extra == {"harvest": 2}
    assert cache.refresh_sync("cerebras", harvest, force=True).extra == {"harvest": 3}
    assert cache.get_sync("cerebras").extra == {"harvest": 3}
    with pytest.raises(ValueError, match="expected a record for cerebras/default, not cerebras/work"):
        cache.refresh_sync("cerebras", lambda: record(profile="work"), force=True)
    assert cache.get_sync("cerebras", "work") is None


async def test_a_refresh_for_a_refused_record_takes_the_one_harvested_since(cache):
    """Callers whose request was refused race to re-harvest: a record stored after the refused one,
    even before this caller reached the store, is returned without a second harvest."""
    refused = record(harvested_at=time.time() - 60, extra={"harvest": "refused"})
    await cache.put(refused)
    calls = []

    async def harvest():
        calls.append(1)
        return record(extra={"harvest": len(calls)})

    await cache.put(record(extra={"harvest": "by another caller"}))
    got = await cache.refresh("cerebras", harvest, stale=refused.harvested_at)
    assert got.extra == {"harvest": "by another caller"} and calls == []
    again = await cache.refresh("cerebras", harvest, stale=got.harvested_at)  # the new one refused too
    assert again.extra == {"harvest": 1} and (await cache.get("cerebras")).extra == {"harvest": 1}


def test_the_harvest_may_write_the_record_itself_without_deadlock(cache):
    def harvest():
        cache.put_sync(record(extra={"step": "login"}))
        cache.update_sync("cerebras", lambda r: r.merge_cookies([Cookie("extra", "1", "cerebras.ai")]))
        return cache.get_sync("cerebras")

    got = cache.refresh_sync("cerebras", harvest, timeout=5)
    assert got.extra == {"step": "login"} and {c.name for c in got.cookies} == {"session", "extra"}


def test_a_held_lock_times_out_naming_the_holder_pid(cache):
    cache.put_sync(record())
    with cache._lock("cerebras", "default", 1.0):
        started = time.monotonic()
        with pytest.raises(CacheLockTimeout, match=f"held by pid {os.getpid()}") as info:
            cache.update_sync("cerebras", lambda r: r, timeout=0.2)
        assert 0.2 <= time.monotonic() - started < 10
        assert info.value.holder_pid == os.getpid() and isinstance(info.value, TimeoutError)
    assert cache.update_sync("cerebras", lambda r: r, timeout=0.2) is not None


async def test_async_twins(cache):
    await cache.put(record())
    assert (await cache.get("cerebras")).api_key == API_KEY

    async def bump(r):
        await asyncio.sleep(0)
        r.extra["n"] = r.extra.get("n", 0) + 1
        return r

    assert (await cache.update("cerebras", bump)).extra["n"] == 1
    assert (await cache.update("cerebras", lambda r: bump(r))).extra["n"] == 2
    assert (await cache.update("cerebras", lambda r: None)).extra["n"] == 2
    assert [r.site for r in await cache.list()] == ["cerebras"]

    async def harvest():
        await asyncio.sleep(0.01)
        return record(extra={"async": True})

    assert (await cache.refresh("cerebras", harvest, force=True)).extra == {"async": True}
    assert (await cache.refresh("cerebras", lambda: record(extra={"sync": 1}), force=True)).extra == {"sync": 1}
    assert (await cache.refresh("cerebras", harvest)).extra == {"sync": 1}  # still fresh
    assert await cache.delete("cerebras") and await cache.get("cerebras") is None


async def test_a_cancelled_async_wait_does_not_leak_the_lock(cache):
    cache.put_sync(record())
    with cache._lock("cerebras", "default", 1.0):
        task = asyncio.create_task(cache.update("cerebras", lambda r: r, timeout=5))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    await asyncio.sleep(0.2)  # the worker thread gets the lock, then gives it back
    assert await cache.update("cerebras", lambda r: r, timeout=1) is not None


async def test_a_cancelled_update_finishes_its_write_before_releasing_the_lock(tmp_path, monkeypatch) -> None:
    import asyncio
    import threading

    from harvestkit.cache import AuthCache, SessionRecord

    cache = AuthCache(tmp_path / "c")
    cache.put_sync(SessionRecord("cerebras", api_key="csk-zero"))
    writing, release = threading.Event(), threading.Event()
    original = AuthCache._write

    def slow_write(self, record, data):
        writing.set()
        release.wait(5)
        original(self, record, data)

    monkeypatch.setattr(AuthCache, "_write", slow_write)
    task = asyncio.ensure_future(cache.update("cerebras", lambda r: __import__("dataclasses").replace(r, api_key="csk-one")))
    await asyncio.to_thread(writing.wait, 5)
    task.cancel()
    await asyncio.sleep(0.05)
    assert not task.done()  # still holding the lock: the write is not finished
    release.set()
    try:
        await task
    except asyncio.CancelledError:
        pass
    monkeypatch.setattr(AuthCache, "_write", original)
    assert cache.get_sync("cerebras").api_key == "csk-one"
