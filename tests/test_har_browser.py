"""HAR files from a real Chromium: a recording of a sandbox sign-in (made as DevTools saves it)
imports into a session that chats, and its scrubbed copy holds none of the sandbox's secrets."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from nodriver import cdp
from harvestkit.cache import AuthCache
from harvestkit.harvester.browser import Chromium, LaunchOptions
from harvestkit.harvester.har_recorder import HarRecorder
from harvestkit.harvester.sites import recipe_for
from harvestkit.harvester.trust import spki_pins
from harvestkit.sandbox import Sandbox
from harvestkit.sandbox.shortcuts import wait_for_page

from harvester_helpers import cache, need_browser, sandbox, shared_sandbox, sign_in_as_user

need_browser()
__all__ = ["cache", "sandbox", "shared_sandbox"]  # fixtures


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harvestkit.cli", *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def sandbox_secrets(sandbox: Sandbox) -> set[str]:
    """Every session token and demo key the sandbox issued."""
    return set(sandbox.accounts.sessions) | set(sandbox.accounts.keys)


READY = {
    "cerebras": "document.body && document.body.dataset.state === 'signed-in'",
    "cloudflare": "document.readyState === 'complete' && !document.title.startsWith('Just a moment')",
}


def _session_body(entry: dict[str, Any]) -> bool:
    return "/api/auth/session" in entry["request"]["url"] and "demoApiKey" in entry["response"]["content"].get("text", "")


async def recorded(site: str, profile: Path, act: Any) -> dict[str, Any]:
    """What a user's DevTools records: a Chromium (harvestkit's launcher, no harvest) opens the
    site with the Network panel recording, the user signs in or passes the challenge, and the
    page settles. The HAR document, as "Export HAR (with sensitive data)" saves it."""
    recipe, proxy = recipe_for(site), os.environ["HARVESTKIT_PROXY"]
    pins = await spki_pins(os.environ["HARVESTKIT_CA_BUNDLE"], recipe.hosts, proxy)
    async with Chromium(LaunchOptions(headless=True, user_data_dir=profile, proxy=proxy, spki_pins=pins)) as chromium:
        tab = chromium.browser.main_tab
        recorder = HarRecorder(tab)
        await tab.send(recorder.attach())
        await tab.send(cdp.page.navigate(recipe.start_url))
        await act(tab)
        await wait_for_page(tab, READY[site])
        for _ in range(100):  # the page's own calls, with their bodies read
            har = await recorder.document()
            if site == "cloudflare" or any(_session_body(e) for e in har["log"]["entries"]):
                return har
            await asyncio.sleep(0.1)
        raise AssertionError("the page never fetched its session")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("site", ["cerebras", "cloudflare"])
async def test_a_devtools_har_of_a_sign_in_imports_into_a_session_that_chats(
    site: str, sandbox: Sandbox, cache: AuthCache, tmp_path: Path
) -> None:
    async def nothing(tab: Any) -> None:
        return None

    har = await recorded(site, tmp_path / "profile", sign_in_as_user if site == "cerebras" else nothing)
    path = tmp_path / f"{site}.har"
    path.write_text(json.dumps(har))
    fresh = {**os.environ, **sandbox.env, "HARVESTKIT_HOME": str(tmp_path / "fresh"), "HARVESTKIT_NO_HARVEST": "1"}

    imported = run(fresh, "cache", "import", site, str(path))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith(f"imported: {site}/default now holds ")
    assert "the user agent" in imported.stdout
    if site == "cerebras":
        assert "the demo key" in imported.stdout
    chat = run(fresh, "chat", "-p", site, "Hi")  # no browser may run: HARVESTKIT_NO_HARVEST
    assert chat.returncode == 0, chat.stderr
    assert "Sandbox reply to: Hi" in chat.stdout

    scrubbed = tmp_path / "scrubbed.har"
    done = run(fresh, "record", "scrub", str(path), "-o", str(scrubbed))
    assert done.returncode == 0, done.stderr
    text = scrubbed.read_text()
    record = AuthCache(tmp_path / "fresh" / "sessions").get_sync(site)  # what the sandbox issued to that browser
    secrets = {c.value for c in record.cookies} | {record.api_key or ""} | sandbox_secrets(sandbox)
    assert len([s for s in secrets if s]) >= 2
    assert [s for s in secrets if s and s in text] == []
    again = run(fresh, "cache", "import", site, str(scrubbed), "--profile", "scrubbed")
    assert again.returncode == 0  # the scrubbed file is still a HAR (its cookies are placeholders)


@pytest.mark.timeout(120)
def test_harvest_record_writes_a_private_scrubbed_har_of_the_browser_traffic(sandbox: Sandbox, tmp_path: Path) -> None:
    env = {**os.environ, **sandbox.env, "HARVESTKIT_HOME": str(tmp_path / "home")}
    trace = tmp_path / "trace.har"
    done = run(env, "harvest", "cloudflare", "--record", str(trace))
    assert done.returncode == 0, done.stderr
    assert f"recorded: {trace} (" in done.stderr
    assert trace.stat().st_mode & 0o777 == 0o600
    har = json.loads(trace.read_text())
    urls = [e["request"]["url"] for e in har["log"]["entries"]]
    assert "https://playground.ai.cloudflare.com/" in urls
    assert any("/cdn-cgi/" in url for url in urls)  # the challenge it passed
    record = AuthCache(tmp_path / "home" / "sessions").get_sync("cloudflare")
    text = trace.read_text()
    assert record is not None and [c.name for c in record.cookies if c.value in text] == []
    assert "hk-redacted-" in text


@pytest.mark.timeout(180)
def test_a_recorded_harvest_replays_in_the_sandbox(sandbox: Sandbox, tmp_path: Path) -> None:
    env = {**os.environ, **sandbox.env, "HARVESTKIT_HOME": str(tmp_path / "home")}
    trace = tmp_path / "trace.har"
    recorded_run = run(env, "harvest", "cloudflare", "--record", str(trace), "--json")
    assert recorded_run.returncode == 0, recorded_run.stderr
    with Sandbox(replay=trace) as replay:
        again = {**os.environ, **replay.env, "HARVESTKIT_HOME": str(tmp_path / "again")}
        replayed = run(again, "harvest", "cloudflare", "--json")
        missing = [r.note for r in replay.state.requests if r.status == 404]
    assert replayed.returncode == 0, (replayed.stderr, missing)
    first = AuthCache(tmp_path / "home" / "sessions").get_sync("cloudflare")
    second = AuthCache(tmp_path / "again" / "sessions").get_sync("cloudflare")
    assert first is not None and second is not None
    assert sorted(c.name for c in second.cookies) == sorted(c.name for c in first.cookies)
    assert all(c.value.startswith("hk-redacted-") for c in second.cookies)  # what the recording held
    assert second.user_agent == first.user_agent
    # a request the recording does not hold: a 404, and the log says which
    from harvestkit.sandbox.shortcuts import sandbox_session

    async def unrecorded() -> int:
        async with sandbox_session(replay.env) as http:
            return (await http.get("https://playground.ai.cloudflare.com/never-recorded")).status_code

    with Sandbox(replay=trace) as replay:
        assert asyncio.run(unrecorded()) == 404
        assert replay.state.requests[-1].note == "not in the recording: GET playground.ai.cloudflare.com/never-recorded"


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("site", "generation"),
    [("cerebras", None), *(("cloudflare", g) for g in ("agents", "ui-stream", "data-stream", "sse"))],
)
def test_a_recorded_chat_replays_with_the_same_answer(
    site: str, generation: str | None, sandbox: Sandbox, tmp_path: Path
) -> None:
    from client_helpers import StandInHarvester

    if generation is not None:  # the live one; the client finds it (the 404s on the way are recorded too)
        sandbox.set_knobs(generation=generation)
    home = tmp_path / "home"
    env = {**os.environ, **sandbox.env, "HARVESTKIT_HOME": str(home), "HARVESTKIT_NO_HARVEST": "1"}
    asyncio.run(StandInHarvester(sandbox)(site, proxy=sandbox.proxy_url, cache=AuthCache(home / "sessions")))
    trace = tmp_path / "chat.har"
    first = run(env, "chat", "-p", site, "Tell me about replays", "--record", str(trace))
    assert first.returncode == 0, first.stderr
    har = json.loads(trace.read_text())
    streamed = [e for e in har["log"]["entries"] if e.get("_chunks") or e.get("_webSocketMessages")]
    assert streamed, [e["request"]["url"] for e in har["log"]["entries"]]
    record = AuthCache(home / "sessions").get_sync(site)
    assert [c.name for c in record.cookies if c.value in trace.read_text()] == []
    assert record.api_key is None or record.api_key not in trace.read_text()

    with Sandbox(replay=trace) as replay:  # a fresh home whose session is the recording's placeholders
        again = {**os.environ, **replay.env, "HARVESTKIT_HOME": str(tmp_path / "again"), "HARVESTKIT_NO_HARVEST": "1"}
        AuthCache(tmp_path / "again" / "sessions")  # created private
        shutil.copytree(home / "sessions", tmp_path / "again" / "sessions", dirs_exist_ok=True)
        second = run(again, "chat", "-p", site, "Tell me about replays")
        missing = [r.note for r in replay.state.requests if r.status == 404]
    assert second.returncode == 0, (second.stderr, missing)
    assert second.stdout == first.stdout and "Sandbox reply to: Tell me about replays" in first.stdout


@pytest.mark.timeout(120)
def test_a_paced_replay_keeps_the_recorded_read_boundaries_and_timing(sandbox: Sandbox, tmp_path: Path) -> None:
    from client_helpers import StandInHarvester
    from harvestkit.sandbox.shortcuts import sandbox_session

    sandbox.set_knobs(pace=0.02)  # a slow stream: its pieces arrive apart, each read is one
    home = tmp_path / "home"
    env = {**os.environ, **sandbox.env, "HARVESTKIT_HOME": str(home), "HARVESTKIT_NO_HARVEST": "1"}
    asyncio.run(StandInHarvester(sandbox)("cerebras", proxy=sandbox.proxy_url, cache=AuthCache(home / "sessions")))
    trace = tmp_path / "chat.har"
    assert run(env, "chat", "-p", "cerebras", "Pace me", "--record", str(trace)).returncode == 0
    (streamed,) = [e for e in json.loads(trace.read_text())["log"]["entries"] if e["request"]["method"] == "POST"]
    chunks = streamed["_chunks"]
    span = chunks[-1]["offset"] - chunks[0]["offset"]
    assert len(chunks) > 5 and span > 0.2
    body = json.loads(streamed["request"]["postData"]["text"])

    async def replayed(paced: bool) -> tuple[list[bytes], float]:
        with Sandbox(replay=trace, paced=paced) as replay:
            async with sandbox_session(replay.env) as http:
                started = asyncio.get_running_loop().time()
                response = await http.post(streamed["request"]["url"], json=body, stream=True)
                pieces = [piece async for piece in response.aiter_content()]
                return pieces, asyncio.get_running_loop().time() - started

    pieces, took = asyncio.run(replayed(True))
    assert b"".join(pieces).decode() == "".join(c["text"] for c in chunks)
    assert took >= 0.8 * span  # the recorded timing (a lower bound: a loaded machine is only slower)
    assert len(pieces) >= len(chunks) // 2  # written piece by piece, not as one body
    whole, _ = asyncio.run(replayed(False))
    assert b"".join(whole) == b"".join(pieces)
