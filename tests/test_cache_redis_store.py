"""The session store on a real Redis: the file store's own tests through the one interface, then
what only the Redis backend has (quarantine in Redis, TTLs, the factory, credentials, prefixes).

The file store's tests (tests/test_cache_store.py) run here unchanged against `RedisStore`, made
by `open_store(url)`: the `cache` fixture below overrides theirs. Those about files (locations,
modes, symlinks, temp files, file locks, writing into a record's file) are skipped by name in
FILE_SPECIFIC; where the behaviour exists in Redis too, a Redis version of the test is below.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import warnings
from collections.abc import AsyncIterator

import pytest
import test_cache_store as file_tests
from harvestkit.cache import (
    AuthCache,
    CacheCorruptWarning,
    CacheSchemaError,
    Cookie,
    RedisStore,
    SessionStore,
    StoreAuthError,
    StoreConfigError,
    StoreUnavailable,
    open_store,
)
from redis_helpers import PASSWORD, RedisServer, no_leftover_redis, redis_server  # noqa: F401 - fixtures
from test_cache_store import API_KEY, CORRUPTIONS, SECRET, record

SHARED = [
    "test_put_get_round_trips_every_field_and_profiles_are_separate",
    "test_update_semantics",
    "test_refresh_harvests_only_when_stale_or_forced",
    "test_the_harvest_may_write_the_record_itself_without_deadlock",
    "test_a_refresh_for_a_refused_record_takes_the_one_harvested_since",
    "test_async_twins",
]
FILE_SPECIFIC = {
    "test_location_follows_root_then_env_then_platformdirs": "the file store's directory",
    "test_dirs_are_0700_and_files_0600_whatever_the_umask": "file modes",
    "test_a_record_open_to_others_is_refused_with_the_chmod_fix": "file modes",
    "test_a_cache_dir_open_to_others_is_refused": "file modes",
    "test_a_symlinked_record_is_not_followed": "symbolic links",
    "test_a_temp_file_left_by_a_killed_writer_is_replaced_and_ignored": "temp files",
    "test_a_corrupt_record_is_quarantined_once_and_reads_as_no_session": "writes the file; Redis version below",
    "test_update_quarantines_a_corrupt_record_and_hands_fn_none": "writes the file; Redis version below",
    "test_a_newer_schema_is_an_error_and_the_file_is_kept": "writes the file; Redis version below",
    "test_is_fresh": "builds AuthCache(cache.root); Redis version below",
    "test_a_held_lock_times_out_naming_the_holder_pid": "file locks; the lease's is in test_cache_redis_fleet",
    "test_a_cancelled_async_wait_does_not_leak_the_lock": "file locks; Redis version in test_cache_redis_callers",
    "test_a_cancelled_update_finishes_its_write_before_releasing_the_lock": "patches AuthCache._write",
}


def _skipped(name: str, reason: str):
    @pytest.mark.skip(reason=f"{name} is file-store specific: {reason}")
    def test() -> None: ...

    return test


for _name in SHARED:
    globals()[_name] = getattr(file_tests, _name)
for _name, _reason in FILE_SPECIFIC.items():
    globals()[_name] = _skipped(_name, _reason)


def test_every_file_store_test_is_run_here_or_named_file_specific():
    names = {name for name in dir(file_tests) if name.startswith("test_")}
    assert names == set(SHARED) | set(FILE_SPECIFIC), "classify new tests of test_cache_store.py in this module"


@pytest.fixture
async def cache(redis_server, monkeypatch) -> AsyncIterator[SessionStore]:  # noqa: F811 - the fixture above
    monkeypatch.setenv("HARVESTKIT_STORE", redis_server.url)
    store = open_store()
    assert isinstance(store, RedisStore) and isinstance(store, SessionStore)
    yield store
    await store.aclose()  # the test loop's connections, as an async user closes them


def raw_key(store: RedisStore, site: str = "cerebras", profile: str = "default") -> str:
    return store.key("record", site, profile)


# -- bad data, Redis versions of the file store's tests ----------------------------------------------


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_a_corrupt_record_is_quarantined_once_and_reads_as_no_session(cache, redis_server, kind):
    cache.put_sync(record())
    text = redis_server.command("GET", raw_key(cache)).decode()
    broken = CORRUPTIONS[kind](text).encode("utf-8", "surrogateescape")
    redis_server.command("SET", raw_key(cache), broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cache.get_sync("cerebras") is None
        assert cache.get_sync("cerebras") is None
        assert cache.list_sync() == []
    caught = [w for w in caught if w.category is not ResourceWarning]  # earlier tests' loops, collected now
    assert len(caught) == 1 and caught[0].category is CacheCorruptWarning
    message = str(caught[0].message)
    assert "cerebras/default" in message and "moved" in message
    assert API_KEY not in message and SECRET not in message and PASSWORD not in message
    [moved] = redis_server.command("KEYS", "harvestkit:corrupt:cerebras:default:*")
    assert redis_server.command("GET", moved) == broken
    assert 29 * 86400 < redis_server.command("TTL", moved) <= 30 * 86400
    assert cache.update_sync("cerebras", lambda r: r or record(extra={"recovered": True})).extra == {"recovered": True}


def test_update_quarantines_a_corrupt_record_and_hands_fn_none(cache, redis_server):
    cache.put_sync(record())
    redis_server.command("SET", raw_key(cache), "{")
    seen = []
    with pytest.warns(CacheCorruptWarning):
        cache.update_sync("cerebras", lambda r: seen.append(r))
    # fn first ran on the record as this process last wrote it (an update costs one round trip when
    # nobody changed it meanwhile); its answer was not stored, and it ran again on the record as is
    assert [r and r.api_key == API_KEY for r in seen] == [True, None] and cache.get_sync("cerebras") is None


def test_a_newer_schema_is_an_error_and_the_record_is_kept(cache, redis_server):
    cache.put_sync(record())
    data = json.loads(redis_server.command("GET", raw_key(cache))) | {"schema_version": 2, "new_field": 1}
    redis_server.command("SET", raw_key(cache), json.dumps(data))
    for attempt in (lambda: cache.get_sync("cerebras"), lambda: cache.update_sync("cerebras", lambda r: r), cache.list_sync):
        with pytest.raises(CacheSchemaError, match=r"schema version 2.*up to version 1") as info:
            attempt()
        assert info.value.found == 2 and info.value.supported == 1
    assert json.loads(redis_server.command("GET", raw_key(cache))) == data
    assert redis_server.command("KEYS", "harvestkit:corrupt:*") == []


def test_is_fresh_follows_the_stores_max_age(cache, redis_server):
    now = 1_800_000_000.0
    unknown = record(harvested_at=now - 3600, expires_at=None)
    assert cache.is_fresh(unknown, now=now) and not cache.is_fresh(unknown, max_age=1800, now=now)
    assert not open_store(redis_server.url, max_age=600).is_fresh(unknown, now=now)
    assert cache.is_fresh(record(expires_at=now + 60), 59, now=now)
    assert not cache.is_fresh(record(expires_at=now + 60), 60, now=now)


# -- TTLs -------------------------------------------------------------------------------------------


def test_records_live_a_grace_period_past_their_expiry(redis_server):
    store = open_store(redis_server.url, record_grace=3600, max_age=600)
    now = time.time()
    store.put_sync(record(expires_at=now + 7200))
    store.put_sync(record(profile="unknown", harvested_at=now, expires_at=None))
    store.put_sync(record(profile="expired", expires_at=now - 86400))

    def ttl(profile):
        return redis_server.command("PTTL", raw_key(store, profile=profile)) / 1000

    assert 7200 + 3600 - 5 < ttl("default") <= 7200 + 3600
    assert 600 + 3600 - 5 < ttl("unknown") <= 600 + 3600
    assert 3600 - 5 < ttl("expired") <= 3600  # stale, still kept: its cookies serve the next refresh
    store.update_sync("cerebras", lambda r: r.merge_cookies([Cookie("x", "1", "cerebras.ai")]), "expired")
    assert 3600 - 5 < ttl("expired") <= 3600  # every write sets it anew


def test_a_record_whose_ttl_ran_out_is_gone_from_get_and_list(redis_server):
    store = open_store(redis_server.url, record_grace=0)
    store.put_sync(record(expires_at=time.time() - 10))  # kept the minimum: 1 s
    store.put_sync(record(profile="work"))
    assert [r.profile for r in store.list_sync()] == ["default", "work"]
    time.sleep(1.2)
    assert store.get_sync("cerebras") is None and [r.profile for r in store.list_sync()] == ["work"]
    assert redis_server.command("SMEMBERS", "harvestkit:records") == {b"cerebras:work"}


# -- the factory --------------------------------------------------------------------------------------


def test_the_factory_picks_the_file_store_unless_told_otherwise(tmp_path, monkeypatch):
    monkeypatch.delenv("HARVESTKIT_STORE", raising=False)
    monkeypatch.setenv("HARVESTKIT_HOME", str(tmp_path / "home"))
    assert isinstance(open_store(), AuthCache) and open_store().root == tmp_path / "home" / "sessions"
    monkeypatch.setenv("HARVESTKIT_STORE", "")
    assert isinstance(open_store(), AuthCache)
    store = open_store(f"file://{tmp_path}/elsewhere", max_age=60)
    assert isinstance(store, AuthCache) and store.root == tmp_path / "elsewhere" and store.max_age == 60
    assert isinstance(store, SessionStore)
    monkeypatch.setenv("HARVESTKIT_STORE", "rediss://cache.example:6380/2?lease=5&prefix=team:")
    tls = open_store()
    assert isinstance(tls, RedisStore) and tls.lease == 5 and tls.prefix == "team:"
    assert tls.conn.url.redis_url.startswith("rediss://cache.example:6380/2?")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("memcached://127.0.0.1:11211", "is not a store harvestkit knows: use redis://"),
        ("127.0.0.1:6379", "is not a store harvestkit knows"),
        ("redis://127.0.0.1:port/0", "invalid port"),
        ("redis:///0", "names no host"),
        ("redis://127.0.0.1:6379/zero", "must be a database number"),
        (f"redis://:{PASSWORD}@127.0.0.1:6379/0?password=x", "unknown option(s) password"),
        ("redis://127.0.0.1/0?lease=-1", "lease='-1': it must be a number of seconds > 0"),
        ("file:relative/dir", "needs an absolute path"),
    ],
)
def test_a_bad_store_url_is_a_one_line_config_error_without_the_password(url, expected):
    with pytest.raises(StoreConfigError) as info:
        open_store(url)
    assert expected in str(info.value) and "\n" not in str(info.value)
    assert PASSWORD not in str(info.value)


def test_without_redis_py_the_error_says_which_extra_to_install(monkeypatch):
    for name in ("harvestkit.cache.redis_store", "harvestkit.cache.redis_client", "harvestkit.cache.lease"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(StoreConfigError, match=r"pip install 'harvestkit\[redis\]'"):
        open_store("redis://127.0.0.1:6379/0")


# -- credentials and secrets ----------------------------------------------------------------------------


def test_the_password_and_the_secrets_never_show(redis_server, caplog):
    caplog.set_level(logging.DEBUG)
    store = open_store(redis_server.url)
    assert PASSWORD not in repr(store) and "default:" in repr(store)
    store.put_sync(record())
    stored = redis_server.command("GET", raw_key(store))
    assert API_KEY.encode() in stored and SECRET.encode() in stored  # stored as today: the record's JSON

    wrong = open_store(redis_server.url.replace(PASSWORD, "not-the-password-0123456789"))
    with pytest.raises(StoreAuthError) as auth:
        wrong.get_sync("cerebras")
    none = open_store(redis_server.url.replace(f"default:{PASSWORD}@", ""))
    with pytest.raises(StoreAuthError) as noauth:
        none.get_sync("cerebras")
    redis_server.stop()
    with pytest.raises(StoreUnavailable) as down:
        store.update_sync("cerebras", lambda r: r)
    messages = [str(auth.value), str(noauth.value), str(down.value), repr(wrong), caplog.text]
    for text in messages:
        assert PASSWORD not in text and "not-the-password-0123456789" not in text
        assert API_KEY not in text and SECRET not in text
    assert "HARVESTKIT_STORE" in str(auth.value) and "\n" not in str(auth.value)
    assert f"127.0.0.1:{redis_server.port}" in str(down.value) and down.value.__cause__ is None


def test_stores_with_different_prefixes_share_a_server_without_mixing(redis_server):
    team_a = open_store(f"{redis_server.url}?prefix=a:")
    team_b = open_store(redis_server.url, prefix="b:")
    team_a.put_sync(record(extra={"team": "a"}))
    assert team_b.get_sync("cerebras") is None and team_b.list_sync() == []
    team_b.put_sync(record(extra={"team": "b"}))
    assert team_a.get_sync("cerebras").extra == {"team": "a"} and team_b.get_sync("cerebras").extra == {"team": "b"}


def test_rediss_talks_tls_and_refuses_a_server_it_cannot_verify(tmp_path):
    server = RedisServer(tmp_path / "tls", password=PASSWORD, tls=True).start()
    try:
        store = open_store(server.url)
        assert store.conn.url.redis_url.startswith("rediss://")
        store.refresh_sync("cerebras", record)
        assert store.get_sync("cerebras").api_key == API_KEY
        untrusted = open_store(server.url.partition("?")[0])  # the system CAs do not know the test CA
        with pytest.raises(StoreUnavailable, match="certificate verify failed") as info:
            untrusted.get_sync("cerebras")
        plain = open_store(server.url.partition("?")[0].replace("rediss://", "redis://"))
        with pytest.raises(StoreUnavailable):
            plain.get_sync("cerebras")
        assert PASSWORD not in str(info.value)
    finally:
        server.stop()


def test_cookie_files_import_and_export_through_redis(cache):
    from test_cache_cookiefiles import CDP_COOKIES, COOKIES_TXT

    from harvestkit.cache import CacheError, parse_cdp_cookies, parse_cookies, parse_netscape_cookies

    with pytest.raises(CacheError, match="no cached session for cerebras/default"):
        cache.export_cookies("cerebras")
    imported = cache.import_cookies("cerebras", COOKIES_TXT)
    assert imported.source == "import" and cache.get_sync("cerebras").cookies == parse_netscape_cookies(COOKIES_TXT)
    cache.import_cookies("cerebras", json.dumps(CDP_COOKIES), replace=True)
    assert parse_cookies(cache.export_cookies("cerebras", "cdp")) == parse_cdp_cookies(CDP_COOKIES)


def test_the_readme_acl_user_limited_to_its_keys_can_do_everything_the_store_does(redis_server):
    acl = ["harvestkit", "on", ">acl-user-password-0123456789", "~harvestkit:*", "+@read", "+@write"]
    redis_server.command("ACL", "SETUSER", *acl, "+@transaction", "+@scripting", "-@dangerous")
    url = redis_server.url.replace(f"default:{PASSWORD}", "harvestkit:acl-user-password-0123456789")
    store = open_store(url, lease=0.5)
    store.put_sync(record(profile="other"))
    store.refresh_sync("cerebras", record)
    store.update_sync("cerebras", lambda r: r.merge_cookies([Cookie("x", "1", "cerebras.ai")]))
    redis_server.command("SET", raw_key(store, profile="other"), "{")
    with pytest.warns(CacheCorruptWarning):
        assert [r.profile for r in store.list_sync()] == ["default"]
    assert store.delete_sync("cerebras") and store.get_sync("cerebras") is None
    outsider = open_store(url, prefix="elsewhere:")
    with pytest.raises(StoreAuthError, match="no permissions.*ACL SETUSER <user> ~<prefix>"):
        outsider.get_sync("cerebras")


async def test_async_with_closes_the_loops_connections(redis_server):
    async with open_store(redis_server.url) as store:
        await store.put(record())
        client = store.conn.client()
        assert (await store.get("cerebras")).api_key == API_KEY
    assert store.conn.client() is not client  # closed and dropped; a later call gets a new one
    await store.aclose()
