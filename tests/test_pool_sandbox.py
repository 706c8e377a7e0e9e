"""Pools against the sandbox: two Cerebras sessions, one of them rate-limited, through the client
and through the gateway; a 401 re-harvests only the member it hit."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from client_helpers import CHROME_UA, HINTS, eventually
from harvestkit.cache import SessionRecord
from harvestkit.client import Client, MissingCredentials, RateLimited, Settings
from harvestkit.client.pool import Member
from harvestkit.client.session_pool import PoolExhausted, SessionPool
from harvestkit.gateway import serve

MODEL = "gpt-oss-120b"


def _session(client_env, profile: str, *, valid: bool = True) -> str:
    """A cached Cerebras session for ``profile`` whose demo key the sandbox accepts (or not)."""
    key = f"csk-pool{profile}{secrets.token_hex(12)}"
    if valid:
        client_env.sandbox.accounts.add_key(key)
    client_env.cache.put_sync(SessionRecord("cerebras", profile, user_agent=CHROME_UA, client_hints=dict(HINTS), api_key=key))
    return key


def _keys_used(client_env) -> list[tuple[str, int | None]]:
    """(key, status) of each chat the sandbox saw, in order."""
    chats = client_env.chats()
    return [(r.headers["authorization"].partition(" ")[2], r.status) for r in chats]


async def _settled(client_env, at_least: int) -> list[tuple[str, int | None]]:
    """The chats once the sandbox has logged ``at_least`` of them, each with its status."""
    await eventually(lambda: len(used := _keys_used(client_env)) >= at_least and all(s for _, s in used))
    return _keys_used(client_env)


def _recording(client_env) -> tuple[list[tuple[str, str | None]], object]:
    """The stand-in harvester, noting the (profile, proxy) of each harvest."""
    harvests: list[tuple[str, str | None]] = []

    async def harvest(site: str, *, profile: str = "default", proxy: str | None = None, **kwargs):
        harvests.append((profile, proxy))
        return await client_env.harvester(site, profile=profile, proxy=proxy, **kwargs)

    return harvests, harvest


@pytest.fixture
async def pooled(client_env) -> AsyncIterator[tuple[Client, SessionPool, str, str]]:
    """A client with a pool of sessions a and b; a's key answers 429."""
    limited, serving = _session(client_env, "a"), _session(client_env, "b")
    client_env.sandbox.set_knobs(rate_limited_keys=[limited], rate_limit_reset=30.0)
    pool = SessionPool("cerebras", ["a", "b"], sticky=False)
    settings = Settings.from_env(harvest=client_env.harvester, pools=[pool], max_retries=0, idle_timeout=10)
    async with Client(settings) as client:
        yield client, pool, limited, serving


async def test_a_pool_of_two_cerebras_sessions_one_rate_limited_every_request_succeeds(client_env, pooled) -> None:
    client, pool, limited, serving = pooled
    answers = [await client.chat(f"Question {n}", model=MODEL) for n in range(6)]
    answers += await asyncio.gather(*(client.chat(f"Together {n}", model=MODEL) for n in range(6)))
    assert all(a.text.startswith("Sandbox reply to: ") and a.finish_reason == "stop" for a in answers)
    used = await _settled(client_env, 13)
    assert used.count((limited, 429)) >= 1  # the limited session was tried...
    assert [s for k, s in used if k == serving] == [200] * 12  # ...and b answered every request
    assert used[0] == (limited, 429) and used[1] == (serving, 200)  # moved within the first request
    row = {r.profile: r for r in pool.status()}["a"]
    assert 25 < row.cooling_for <= 30 and row.reason == "rate limited" and row.limits["tokens-minute"] == 0
    assert client_env.harvester.calls == []  # a 429 is no reason to harvest


async def test_the_cooldown_is_shared_with_another_client_on_the_same_store(client_env, pooled) -> None:
    client, _, limited, serving = pooled
    await client.chat("First", model=MODEL)
    other = Settings.from_env(harvest=client_env.harvester, pools=[SessionPool("cerebras", ["a", "b"])], max_retries=0)
    async with Client(other) as second:  # another process would see the same records
        for n in range(3):
            await second.chat(f"From elsewhere {n}", model=MODEL)
    assert [k for k, s in await _settled(client_env, 5)].count(limited) == 1  # the second client never tried a


async def test_when_every_session_is_rate_limited_the_error_says_when_the_first_frees_up(client_env, pooled) -> None:
    client, pool, limited, serving = pooled
    client_env.sandbox.set_knobs(rate_limited_keys=[limited, serving], rate_limit_reset=12.0)
    started = time.time()
    with pytest.raises(PoolExhausted) as caught:
        await client.chat("Anyone?", model=MODEL)
    assert isinstance(caught.value, RateLimited) and caught.value.status_code == 429
    assert 10 < caught.value.retry_after <= 12 and "first frees up in" in str(caught.value)
    assert limited not in str(caught.value) and serving not in str(caught.value)
    assert sorted(s for _, s in await _settled(client_env, 2)) == [429, 429]  # each tried once, then no more
    assert all(started + 10 < r.cooling_for + time.time() for r in pool.status())


async def test_a_401_re_harvests_only_the_session_it_hit(client_env) -> None:
    _session(client_env, "a", valid=False)  # its demo key is refused
    serving = _session(client_env, "b")
    harvests, harvest = _recording(client_env)
    pool = SessionPool("cerebras", ["a", "b"], sticky=False)
    async with Client(Settings.from_env(harvest=harvest, pools=[pool], max_retries=0)) as client:
        answers = [await client.chat(f"Hi {n}", model=MODEL) for n in range(4)]
    assert all(a.text.startswith("Sandbox reply to: Hi") for a in answers)
    assert [profile for profile, _ in harvests] == ["a"]  # one harvest, of a alone
    assert client_env.cache.get_sync("cerebras", "b").api_key == serving
    assert client_env.cache.get_sync("cerebras", "a").api_key not in (None, serving)


@pytest.fixture
async def pooled_gateway(client_env) -> AsyncIterator[tuple[str, SessionPool, str, str]]:
    limited, serving = _session(client_env, "a"), _session(client_env, "b")
    client_env.sandbox.set_knobs(rate_limited_keys=[limited], rate_limit_reset=30.0)
    pool = SessionPool("cerebras", ["a", "b"])
    async with serve(port=0, pools=[pool]) as url:
        yield url, pool, limited, serving


async def test_the_gateway_never_passes_a_429_to_the_caller_while_a_session_can_serve(client_env, pooled_gateway) -> None:
    url, pool, limited, _ = pooled_gateway
    body = {"model": f"cerebras/{MODEL}", "messages": [{"role": "user", "content": "Through the gateway"}]}
    async with aiohttp.ClientSession(url) as http:

        async def ask(n: int, stream: bool) -> tuple[int, str]:
            async with http.post("/v1/chat/completions", json={**body, "stream": stream, "user": f"user-{n}"}) as answer:
                return answer.status, await answer.text()

        results = await asyncio.gather(*(ask(n, n % 2 == 0) for n in range(10)))
        async with http.get("/metrics") as scraped:
            metrics = await scraped.text()
        async with http.get("/ready") as ready:
            readiness = await ready.json()
    assert [status for status, _ in results] == [200] * 10
    whole, streamed = results[1::2], results[0::2]
    assert all(json.loads(text)["choices"][0]["message"]["content"].startswith("Sandbox reply to: Through") for _, text in whole)
    assert all(text.endswith("data: [DONE]\n\n") and '"error"' not in text for _, text in streamed)
    assert any(status == 429 for _, status in await _settled(client_env, 11))  # the sandbox did answer 429
    assert 'harvestkit_pool_session_state{profile="a",proxy="none",site="cerebras",state="cooling"} 1.0' in metrics
    assert 'harvestkit_pool_session_state{profile="b",proxy="none",site="cerebras",state="ready"} 1.0' in metrics
    assert 'harvestkit_pool_session_remaining{profile="a",proxy="none",site="cerebras",window="tokens-minute"} 0.0' in metrics
    assert limited not in metrics and "csk-" not in metrics
    assert readiness["status"] == "ready" and readiness["providers"]["cerebras/b"]["ready"]
    assert readiness["providers"]["cerebras/a"]["profile"] == "a"


async def test_a_challenge_re_harvests_only_the_cloudflare_session_it_hit(client_env) -> None:
    for profile in ("a", "b"):
        await client_env.harvester("cloudflare", profile=profile, proxy=client_env.sandbox.proxy_url, cache=client_env.cache)
    spoiled = client_env.cache.get_sync("cloudflare", "a")
    spoiled.cookies = [dataclasses.replace(c, value="0" * 40) if c.name == "cf_clearance" else c for c in spoiled.cookies]
    client_env.cache.put_sync(spoiled)
    untouched = client_env.cache.get_sync("cloudflare", "b")
    client_env.harvester.calls.clear()
    harvests, harvest = _recording(client_env)
    pool = SessionPool("cloudflare", ["a", "b"], sticky=False)
    async with Client(Settings.from_env(harvest=harvest, pools=[pool], max_retries=0)) as client:
        answers = [await client.chat(f"Hello {n}", provider="cloudflare") for n in range(4)]
    assert all(a.text.startswith("Sandbox reply to: Hello") for a in answers)
    assert [profile for profile, _ in harvests] == ["a"]
    assert client_env.cache.get_sync("cloudflare", "b").harvested_at == untouched.harvested_at


async def test_a_member_is_used_only_through_the_proxy_it_was_harvested_with(client_env) -> None:
    proxy = client_env.sandbox.proxy_url
    stale = SessionRecord("cerebras", "a", user_agent=CHROME_UA, client_hints=dict(HINTS), api_key="csk-" + "x" * 40,
                          proxy="http://127.0.0.1:9")  # harvested through another proxy
    client_env.sandbox.accounts.add_key(stale.api_key)  # a working key: only the binding can refuse it
    client_env.cache.put_sync(stale)
    harvests, harvest = _recording(client_env)
    pool = SessionPool("cerebras", [Member("a", proxy)])
    async with Client(Settings.from_env(harvest=harvest, pools=[pool], proxy=None, max_retries=0)) as client:
        answer = await client.chat("Through my proxy", model=MODEL)
    assert answer.text.startswith("Sandbox reply to: Through my proxy")
    assert harvests == [("a", proxy)]  # re-harvested through the member's proxy, not used through another
    assert client_env.cache.get_sync("cerebras", "a").proxy == proxy


async def test_a_pool_whose_sessions_all_fail_says_so_at_once(client_env) -> None:
    pool = SessionPool("cerebras", ["a", "b"])
    async with Client(Settings.from_env(pools=[pool], allow_harvest=False, max_retries=2)) as client:
        with pytest.raises(MissingCredentials) as first:
            await client.chat("Anyone?", model=MODEL)
        with pytest.raises(MissingCredentials) as again:
            await client.chat("Still nobody?", model=MODEL)
    assert "harvesting is disabled" in str(first.value)
    assert "every session of the cerebras pool failed a moment ago (a: failed: MissingCredentials" in str(again.value)
    assert "harvestkit login cerebras" in str(again.value)
    assert client_env.chats() == []


async def test_the_gateway_answers_429_with_the_first_free_time_when_no_session_can_serve(client_env, pooled_gateway) -> None:
    url, _, limited, serving = pooled_gateway
    client_env.sandbox.set_knobs(rate_limited_keys=[limited, serving], rate_limit_reset=20.0)
    body = {"model": f"cerebras/{MODEL}", "messages": [{"role": "user", "content": "Nobody free"}]}
    async with aiohttp.ClientSession(url) as http, http.post("/v1/chat/completions", json=body) as answer:
        status, error, retry_after = answer.status, (await answer.json())["error"], answer.headers.get("retry-after")
    assert status == 429 and error["type"] == "rate_limit_error"
    assert "every session of the cerebras pool is rate-limited" in error["message"]
    assert 18 <= int(retry_after) <= 20
    assert "csk-" not in error["message"]


async def test_a_conversation_stays_on_its_session(client_env) -> None:
    first, second = _session(client_env, "a"), _session(client_env, "b")
    pool = SessionPool("cerebras", ["a", "b"])  # sticky by default
    async with Client(Settings.from_env(harvest=client_env.harvester, pools=[pool], max_retries=0)) as client:
        users = ["alice", "alice", "bob", "alice", "bob", "bob"]  # unsticky, a tie alternates a, b, a...
        for n, user in enumerate(users):
            await client.chat(f"Turn {n}", model=MODEL, user=user)
    used = [key for key, _ in await _settled(client_env, 6)]
    assert used == [first if user == "alice" else second for user in users]  # bob got the one alice did not
