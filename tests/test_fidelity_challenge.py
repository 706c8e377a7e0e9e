"""The challenge as it bites today (spec 4.2): again right after a pass, on a WebSocket upgrade, and
`__cf_bm`'s sliding 30-minute window; the client's single-flight re-harvest and its cache surviving each."""
from __future__ import annotations

import asyncio
import time

import client_helpers
import pytest
from curl_cffi.curl import CurlError
from curl_cffi.requests.exceptions import RequestException
from harvestkit.client import Cloudflare
from harvestkit.sandbox import Sandbox
from harvestkit.sandbox.shortcuts import CHROME_UA, solve_challenge
from sandbox_helpers import PLAYGROUND, cleared_session

MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
WS_URL = "wss://playground.ai.cloudflare.com/agents/playground/Cloudflare-AI-Playground-test"


def cookie_expiry(response, name: str) -> str:
    header = next(c for c in response.headers.get_list("set-cookie") if c.startswith(name + "="))
    return next(part.strip()[8:] for part in header.split(";") if part.strip().lower().startswith("expires="))


# -- challenged again right after a pass ---------------------------------------------------------------
async def test_first_use_of_a_fresh_clearance_is_challenged_again(sandbox: Sandbox) -> None:
    sandbox.set_knobs(rechallenge_after_pass=1)
    async with await cleared_session(sandbox) as http:
        again = await http.get(f"{PLAYGROUND}/")
        assert again.status_code == 403 and again.headers["cf-mitigated"] == "challenge"
        assert await solve_challenge(http, CHROME_UA)
        assert (await http.get(f"{PLAYGROUND}/")).status_code == 200
        assert (await http.get(f"{PLAYGROUND}/")).status_code == 200
    notes = [r.note for r in sandbox.requests(path="/") if r.status == 403]
    assert any("right after a pass" in (note or "") for note in notes)


@pytest.mark.parametrize("generation", ["agents", "data-stream"])
async def test_client_re_harvests_once_when_challenged_right_after_a_pass(client_env, generation: str) -> None:
    client_env.sandbox.set_knobs(generation=generation, rechallenge_after_pass=1)
    results = await asyncio.gather(*(Cloudflare.chat(f"Call {i}", model=MODEL) for i in range(3)))
    assert [r.text.split(".")[0] for r in results] == [f"Sandbox reply to: Call {i}" for i in range(3)]
    assert client_env.harvester.calls == ["cloudflare", "cloudflare"]  # one re-harvest, shared


# -- a challenged WebSocket upgrade ---------------------------------------------------------------------
async def test_websocket_upgrade_can_get_the_challenge_page(sandbox: Sandbox) -> None:
    sandbox.set_knobs(challenge_websocket=1)
    async with await cleared_session(sandbox) as http:
        with pytest.raises((RequestException, CurlError)):
            async with http.ws_connect(WS_URL, headers={"Origin": PLAYGROUND}):
                pass
        assert (await http.get(f"{PLAYGROUND}/")).status_code == 403  # the clearance was dropped
    (upgrade,) = [r for r in sandbox.requests(path="/agents/playground/") if "#" not in r.path]
    assert upgrade.status == 403 and "WebSocket upgrade challenged" in upgrade.note


async def test_client_re_harvests_when_its_websocket_upgrade_is_challenged(client_env) -> None:
    await Cloudflare.chat("Warm", model=MODEL, transport="agents")
    client_env.sandbox.set_knobs(challenge_websocket=1)
    from harvestkit.client import aclose

    await aclose()  # a new socket is needed
    result = await Cloudflare.chat("Hi", model=MODEL, transport="agents")
    assert result.text.startswith("Sandbox reply to: Hi.")
    assert client_env.harvester.calls == ["cloudflare", "cloudflare"]


# -- __cf_bm: 30 minutes of inactivity -------------------------------------------------------------------
async def test_cf_bm_expiry_slides_with_each_request(sandbox: Sandbox) -> None:
    async with await cleared_session(sandbox) as http:
        first = await http.get(f"{PLAYGROUND}/")
        value = http.cookies.get("__cf_bm")
        await asyncio.sleep(1.1)
        second = await http.get(f"{PLAYGROUND}/")
        assert http.cookies.get("__cf_bm") == value  # the same cookie, still young
    assert cookie_expiry(second, "__cf_bm") != cookie_expiry(first, "__cf_bm")  # pushed out by a second


async def test_an_idle_cf_bm_dies_and_is_replaced(sandbox: Sandbox) -> None:
    sandbox.set_knobs(cf_bm_lifetime=4.0)
    async with await cleared_session(sandbox) as http:
        await http.get(f"{PLAYGROUND}/")
        idle = http.cookies.get("__cf_bm")
        await asyncio.sleep(4.2)  # longer than the window with no request
        await http.get(f"{PLAYGROUND}/")
        assert http.cookies.get("__cf_bm") != idle


async def test_a_busy_session_is_not_re_harvested_early(client_env, monkeypatch) -> None:
    """With a 3 s window, requests every 0.6 s for 6 s keep the session alive: the cache's expiry
    follows each response's Set-Cookie, so the client never re-harvests."""
    monkeypatch.setitem(client_helpers.ESSENTIAL, "cloudflare", ["cf_clearance", "__cf_bm"])  # as the recipe
    client_env.sandbox.set_knobs(generation="data-stream", cf_bm_lifetime=3.0)
    await Cloudflare.chat("Hi", model=MODEL)
    first_expiry = client_env.cache.get_sync("cloudflare").expires_at
    started = time.monotonic()
    while time.monotonic() - started < 6.0:
        await asyncio.sleep(0.6)
        assert (await Cloudflare.chat("Busy", model=MODEL)).text
    record = client_env.cache.get_sync("cloudflare")
    assert client_env.harvester.calls == ["cloudflare"]
    assert record.expires_at > first_expiry + 4.0 and record.expires_at > time.time() + 1.0
