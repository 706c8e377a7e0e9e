"""The harvester against the sandbox with a real Chromium: both sites, login, profiles, sync use.

That the sandbox's challenge really refuses a webdriver-flagged or HeadlessChrome browser is proven
in test_sandbox_browser.py (test_webdriver_flag_is_refused, test_headless_user_agent_is_refused);
here the harvester's own browser passes it, so its user agent and navigator.webdriver are clean.
"""
from __future__ import annotations

import asyncio
import dataclasses
import time
from http.cookiejar import MozillaCookieJar
from pathlib import Path

import pytest
from harvester_helpers import (
    cache,
    leftovers,
    lowered,
    need_browser,
    sandbox,
    shared_sandbox,
    sign_in_as_user,
    wait_until,
)
from harvestkit.cache import AuthCache, Cookie, SessionRecord, parse_set_cookies
from harvestkit.harvester import (
    SITES,
    InPageFetch,
    Progress,
    SignedOut,
    Sniff,
    harvest,
    harvest_many,
    harvest_sync,
    login,
    profile_dir,
)
from harvestkit.sandbox import Sandbox
from harvestkit.sandbox.shortcuts import sandbox_session, sign_in

__all__ = ["cache", "sandbox", "shared_sandbox"]  # fixtures
need_browser()
DAY = 86400.0


def check_browser_identity(record: SessionRecord, sandbox: Sandbox, host: str) -> None:
    """The user agent and client hints are what the page really sent, and not headless."""
    assert record.user_agent and "Headless" not in record.user_agent and "Chrome/" in record.user_agent
    (page, *_) = [r for r in reversed(sandbox.requests(host, "/")) if r.path == "/"]
    sent = lowered(page.headers)
    assert record.user_agent == sent["user-agent"]
    assert set(record.client_hints) == {"sec-ch-ua", "sec-ch-ua-mobile", "sec-ch-ua-platform"}
    assert record.client_hints == {name: sent[name] for name in record.client_hints}
    assert "Headless" not in record.client_hints["sec-ch-ua"]
    assert record.essential_cookies and "essential_cookies" not in record.extra  # a typed field now
    assert record.extra["browser"].count(".") == 3
    assert record.proxy == sandbox.proxy_url


async def test_cloudflare_harvest(sandbox: Sandbox, cache: AuthCache, tmp_path: Path) -> None:
    events: list[Progress] = []
    record = await harvest("cloudflare", cache=cache, progress=events.append)

    assert cache.get_sync("cloudflare").to_dict() == record.to_dict()
    cookies = {c.name: c for c in record.cookies}
    assert set(cookies) == {"cf_clearance", "__cf_bm"}
    for cookie in cookies.values():
        assert cookie.domain == "ai.cloudflare.com" and not cookie.host_only and cookie.secure
        assert time.time() + 1700 < cookie.expires < time.time() + 1801
    assert record.expires_at == min(c.expires for c in cookies.values())
    assert record.source == "harvest" and record.api_key is None
    check_browser_identity(record, sandbox, "playground.ai.cloudflare.com")
    # The clearance the sandbox issued is the one recorded, bound to the recorded user agent.
    verdict = sandbox.requests(path="/cdn-cgi/challenge-platform/")[-1]
    assert verdict.status == 200 and lowered(verdict.headers)["user-agent"] == record.user_agent
    steps = [e.step for e in events]
    assert steps[0] == "browser-started" and steps[-3:] == ["captured", "browser-stopped", "saved"]
    assert sorted(steps[1:-3]) == ["challenge-passed", "challenge-seen", "page-loaded"]  # loaded: either side
    assert steps.index("challenge-seen") < steps.index("challenge-passed")
    assert [e.elapsed for e in events] == sorted(e.elapsed for e in events)
    assert all(e.site == "cloudflare" for e in events)
    assert profile_dir("cloudflare", "default").stat().st_mode & 0o777 == 0o700
    assert leftovers(tmp_path) == []


async def test_signed_out_cerebras_says_how_to_sign_in(sandbox: Sandbox, cache: AuthCache, tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(SignedOut) as caught:
        await harvest("cerebras", cache=cache, timeout=30)
    assert time.monotonic() - started < 10  # told at once, not after the timeout
    assert "`harvestkit login cerebras`" in str(caught.value) and "harvestkit cache import" in str(caught.value)
    assert caught.value.site == "cerebras" and cache.get_sync("cerebras") is None
    assert leftovers(tmp_path) == []


async def test_cookies_imported_into_the_cache_sign_the_browser_in(sandbox: Sandbox, cache: AuthCache,
                                                                  tmp_path: Path) -> None:  # fmt: skip
    """What SignedOut and NoDisplay advise: sign in elsewhere, `harvestkit cache import` the cookies."""
    async with sandbox_session(sandbox.env) as http:
        assert (await sign_in(http))["user"]["email"] == sandbox.email
        jar = MozillaCookieJar(tmp_path / "cookies.txt")
        for cookie in http.cookies.jar:
            jar.set_cookie(cookie)
    jar.save()  # the persistent cookies: the session token
    cache.import_cookies("cerebras", (tmp_path / "cookies.txt").read_text())
    record = await harvest("cerebras", cache=cache)  # a brand-new browser profile
    assert record.api_key == sandbox.accounts.current_key[sandbox.email] and record.source == "harvest"


async def test_login_then_headless_harvests_keep_the_sign_in(sandbox: Sandbox, cache: AuthCache) -> None:
    events: list[Progress] = []
    record = await login("cerebras", cache=cache, headless=True, on_page=sign_in_as_user,
                         progress=events.append, timeout=30)  # fmt: skip
    assert record.source == "login" and cache.get_sync("cerebras").source == "login"
    assert "waiting-for-user" in [e.step for e in events]
    key = sandbox.accounts.current_key[sandbox.email]
    assert record.api_key == key and record.api_key_expires_at is None
    session = next(c for c in record.cookies if c.name == "__Secure-authjs.session-token")
    assert session.domain == "cerebras.ai" and not session.host_only and session.http_only
    assert time.time() + 29 * DAY < session.expires < time.time() + 31 * DAY
    assert record.expires_at == session.expires
    assert {c.domain for c in record.cookies} <= {"cerebras.ai", "inference.cerebras.ai"}
    assert record.extra["session_expires"].endswith("Z")
    check_browser_identity(record, sandbox, "inference.cerebras.ai")
    assert key not in repr(record) and session.value not in repr(record)

    # The sign-in lives in the profile: without any cached cookie, a headless harvest is signed in.
    cache.delete_sync("cerebras")
    events.clear()
    again = await harvest("cerebras", cache=cache, progress=events.append)
    assert again.api_key == key and again.source == "harvest"
    steps = [e.step for e in events]
    assert steps[-3:] == ["captured", "browser-stopped", "saved"] and "challenge-seen" not in steps
    assert steps.index("signed-in") < steps.index("key-captured") < steps.index("captured")
    assert key not in " ".join(str(e) for e in events)  # the key is only shown redacted

    # Cookies in the cache win over the profile's: a session rotated since (by a client) is used.
    sandbox.set_knobs(rotate_cookies=True)
    rotated = await session_call(sandbox, again)
    cache.update_sync("cerebras", lambda r: r.merge_cookies(rotated))
    third = await harvest("cerebras", cache=cache)
    assert third.api_key == key


async def session_call(sandbox: Sandbox, record: SessionRecord) -> list[Cookie]:
    """A client calling /api/auth/session with the record's cookies (it rotates the session)."""
    url = "https://inference.cerebras.ai/api/auth/session"
    jar = record.cookies_for("inference.cerebras.ai")
    headers = {"User-Agent": record.user_agent, "Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())}
    async with sandbox_session(sandbox.env, headers=headers) as http:
        response = await http.get(url)
    assert response.json()["user"]["email"] == sandbox.email
    return parse_set_cookies(response.headers.get_list("set-cookie"), url)


async def test_harvest_many_runs_both_sites_in_one_browser(sandbox: Sandbox, cache: AuthCache) -> None:
    await login("cerebras", cache=cache, headless=True, on_page=sign_in_as_user, timeout=30)
    events: list[Progress] = []
    results = await harvest_many(["cloudflare", "cerebras", "cloudflare"], cache=cache, progress=events.append)

    assert list(results) == ["cloudflare", "cerebras"]
    assert results["cerebras"].api_key == sandbox.accounts.current_key[sandbox.email]
    assert {c.name for c in results["cloudflare"].cookies} == {"cf_clearance", "__cf_bm"}
    assert [e.step for e in events].count("browser-started") == 1
    assert {e.site for e in events if e.step == "saved"} == {"cerebras", "cloudflare"}
    for site, record in results.items():
        assert cache.get_sync(site).harvested_at == record.harvested_at
    # Nothing stale, nothing forced: no browser at all.
    events.clear()
    again = await harvest_many(["cerebras", "cloudflare"], cache=cache, force=False, progress=events.append)
    assert [e.step for e in events] == ["reused", "reused"]
    assert again["cerebras"].harvested_at == results["cerebras"].harvested_at


async def test_harvest_many_reports_each_sites_failure(sandbox: Sandbox, cache: AuthCache) -> None:
    results = await harvest_many(["cerebras", "cloudflare"], cache=cache)
    assert isinstance(results["cerebras"], SignedOut) and cache.get_sync("cerebras") is None
    assert cache.get_sync("cloudflare").to_dict() == results["cloudflare"].to_dict()


async def test_login_waits_for_the_user_to_solve_a_challenge(sandbox: Sandbox, cache: AuthCache) -> None:
    sandbox.set_knobs(interactive_challenge=True)

    async def click(tab) -> None:  # a nodriver Tab
        await wait_until(tab, "document.getElementById('cf-verify') !== null")
        await (await tab.select("#cf-verify")).click()

    events: list[Progress] = []
    record = await login("cloudflare", cache=cache, headless=True, on_page=click, progress=events.append, timeout=30)
    assert {c.name for c in record.cookies} == {"cf_clearance", "__cf_bm"} and record.source == "login"
    assert [e.detail for e in events if e.step == "challenge-seen"] == ["interactive"]
    assert "waiting-for-user" in [e.step for e in events]


async def test_harvest_sync_inside_a_running_loop(sandbox: Sandbox, cache: AuthCache) -> None:
    asyncio.get_running_loop()  # this test's own loop is running: asyncio.run() would refuse
    record = harvest_sync("cloudflare", cache=cache)
    assert cache.get_sync("cloudflare").harvested_at == record.harvested_at


def test_harvest_sync_without_a_loop(sandbox: Sandbox, cache: AuthCache) -> None:
    first = harvest_sync("cloudflare", cache=cache)
    # A fresh record is returned as it is unless forced; the profile then keeps the clearance.
    assert harvest_sync("cloudflare", cache=cache, force=False).harvested_at == first.harvested_at
    assert harvest_sync("cloudflare", cache=cache).harvested_at > first.harvested_at
    assert len(sandbox.requests(path="/cdn-cgi/challenge-platform/h/b/flow/")) == 1  # one verdict


async def test_what_the_page_does_not_fetch_is_fetched_from_the_page(
    sandbox: Sandbox, cache: AuthCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recipe's sniffed URL the page never requests: the harvester requests it from the page."""
    csrf = Sniff(url="https://inference.cerebras.ai/api/auth/csrf", captures={"csrf": "csrfToken"}, fetch=InPageFetch())
    recipe = dataclasses.replace(SITES["cerebras"], name="csrf-probe", sniffs=(csrf,), required=("csrf",),
                                 needs_sign_in=False, required_cookies=(), fallback_after=0.2)  # fmt: skip
    monkeypatch.setitem(SITES, "csrf-probe", recipe)
    record = await harvest("csrf-probe", cache=cache)
    assert len(sandbox.requests("inference.cerebras.ai", "/api/auth/csrf")) == 1
    cookie = next(c for c in record.cookies if c.name == "__Host-authjs.csrf-token")  # set by that answer
    assert record.extra["csrf"] == cookie.value.split("|")[0] and record.api_key is None


def test_sites_are_recipes() -> None:
    assert set(SITES) == {"cerebras", "cloudflare"}
    assert SITES["cerebras"].needs_sign_in and not SITES["cloudflare"].needs_sign_in
    with pytest.raises(ValueError, match="known sites: cerebras, cloudflare"):
        harvest_sync("nowhere")
