"""The harvester's real Chromium against the sandbox's detector challenge (BotD + fpscanner).

Headless on this GPU-less machine and headful under Xvfb it passes with 0 flags, consistent
across the page, its iframes and its workers, the same device on every harvest; with stealth
off (`HARVESTKIT_STEALTH=0`) the same harvest is refused and the error names the flags.
"""
from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
from harvester_helpers import cache, lowered, need_browser, sandbox, shared_sandbox, sign_in_as_user
from harvestkit.cache import AuthCache
from harvestkit.harvester import ChallengeRefused, harvest, harvest_many, login, profile_dir
from harvestkit.harvester.browser import Chromium, LaunchOptions
from harvestkit.harvester.stealth import fingerprint_path, profile_fingerprint
from harvestkit.sandbox import Sandbox
from harvestkit.sandbox.challenge import Verdict
from harvestkit.harvester.stealth_display import Xvfb, XvfbUnavailable

__all__ = ["cache", "sandbox", "shared_sandbox"]  # fixtures
need_browser()
PLAYGROUND = "playground.ai.cloudflare.com"


def verdicts(sandbox: Sandbox) -> list[Verdict]:
    return list(sandbox.state.verdicts)


def check_consistent(verdict: Verdict) -> None:
    """What a real desktop shows: every context agrees, a desktop screen, no SwiftShader, no UTC."""
    signals = verdict.signals
    device, browser, contexts = signals["device"], signals["browser"], signals["contexts"]
    page = {
        "userAgent": browser["userAgent"],
        "platform": device["platform"],
        "memory": device["memory"],
        "cpuCount": device["cpuCount"],
        "language": signals["locale"]["languages"]["language"],
    }
    for context in ("iframe", "webWorker"):
        assert {name: contexts[context][name] for name in page} == page, context
    webgl = signals["graphics"]["webGL"]
    worker = contexts["webWorker"]
    assert (worker["vendor"], worker["renderer"]) == (webgl["vendor"], webgl["renderer"])
    assert "SwiftShader" not in webgl["renderer"] and webgl["renderer"] not in ("", "ERROR", "NA")
    screen = device["screenResolution"]
    assert (screen["width"], screen["height"]) != (800, 600)
    assert screen["availableWidth"] <= screen["width"] and screen["availableHeight"] <= screen["height"]
    assert 0 < screen["innerWidth"] <= screen["width"] and 0 < screen["innerHeight"] <= screen["availableHeight"]
    assert signals["locale"]["internationalization"]["timezone"] not in ("UTC", "Etc/UTC")
    assert signals["automation"]["cdp"] is False and signals["automation"]["webdriver"] is False


async def test_headless_harvest_passes_both_detectors(sandbox: Sandbox, cache: AuthCache) -> None:
    record = await harvest("cloudflare", cache=cache)

    assert {c.name for c in record.cookies} == {"cf_clearance", "__cf_bm"}
    (verdict,) = verdicts(sandbox)
    assert verdict.passed and verdict.botd == [] and verdict.fpscanner == [] and verdict.server == []
    assert set(verdict.timings) == {"botd", "fpscanner"} and all(ms > 0 for ms in verdict.timings.values())
    check_consistent(verdict)
    note = sandbox.requests(PLAYGROUND, "/cdn-cgi/challenge-platform/h/b/flow/")[-1].note
    assert note == "passed: botd clean, fpscanner clean, server checks clean"
    # The fingerprint file the profile got, and what the browser really showed and sent.
    chosen = json.loads(fingerprint_path("default").read_text())
    assert chosen["timezone"] not in ("UTC", "Etc/UTC") and chosen["screen"] == [1920, 1080]
    assert verdict.signals["locale"]["internationalization"]["timezone"] == chosen["timezone"]
    assert verdict.signals["device"]["screenResolution"]["width"] == 1920
    sent = lowered(sandbox.requests(PLAYGROUND, "/cdn-cgi/challenge-platform/h/b/flow/")[-1].headers)
    assert sent["accept-language"] == "en-US,en;q=0.9"
    assert record.extra["headers"]["accept-language"] == "en-US,en;q=0.9"


async def test_both_sites_pass_their_fronts_in_one_browser(sandbox: Sandbox, cache: AuthCache) -> None:
    signed_in = await login("cerebras", cache=cache, headless=True, on_page=sign_in_as_user, timeout=60)
    assert "cf_clearance" in {c.name for c in signed_in.cookies}  # the Cerebras front cleared it too
    cache.update_sync("cerebras", lambda r: dataclasses.replace(r, cookies=[c for c in r.cookies if c.name != "cf_clearance"]))
    shutil.rmtree(profile_dir("cerebras", "default"))  # a new machine with the session imported
    sandbox.state.verdicts.clear()
    sandbox.state.requests.clear()
    results = await harvest_many(["cerebras", "cloudflare"], cache=cache)

    assert results["cerebras"].api_key and {c.name for c in results["cloudflare"].cookies} == {"cf_clearance", "__cf_bm"}
    notes = {r.host: r.note for r in sandbox.requests(path="/cdn-cgi/challenge-platform/h/b/flow/")}
    assert set(notes) == {"inference.cerebras.ai", PLAYGROUND} and len(set(notes.values())) == 1
    assert all(v.passed for v in verdicts(sandbox)) and len(verdicts(sandbox)) == 2
    # one device: the two sites saw the same fingerprint
    assert len({v.fsid for v in verdicts(sandbox)}) == 1


async def test_stealth_off_is_refused_and_the_error_names_the_flags(
    sandbox: Sandbox, cache: AuthCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARVESTKIT_STEALTH", "0")
    monkeypatch.setenv("TZ", "UTC")  # the server's zone, as on most GPU-less servers
    with pytest.raises(ChallengeRefused) as refused:
        await harvest("cloudflare", cache=cache, timeout=30)

    flags = "headlessChromeScreenResolution, hasSwiftshaderRenderer, hasUTCTimezone"
    assert f"refused: fpscanner flagged {flags}" in str(refused.value)
    assert str(refused.value).startswith("cloudflare: playground.ai.cloudflare.com refused this browser")
    (verdict,) = verdicts(sandbox)
    assert not verdict.passed and verdict.fpscanner == flags.split(", ")
    assert sandbox.requests(path="/cdn-cgi/challenge-platform/h/b/flow/")[-1].note == f"refused: fpscanner flagged {flags}"
    assert cache.get_sync("cloudflare") is None
    assert not fingerprint_path("default").exists()  # stealth off writes no fingerprint


async def test_a_profile_is_the_same_device_on_every_harvest(sandbox: Sandbox, cache: AuthCache) -> None:
    for _ in range(2):
        await harvest("cloudflare", cache=cache)
        sandbox.expire_all()  # the clearance dies: the next harvest (a new browser) is challenged again
    first, second = verdicts(sandbox)
    assert first.passed and second.passed
    assert first.fsid == second.fsid and first.fsid.startswith("FS1_000000000000000000000_")


async def test_a_profile_set_to_its_proxys_egress(sandbox: Sandbox, cache: AuthCache) -> None:
    profile_fingerprint("berlin")  # the file is written with the defaults on first use
    path = fingerprint_path("berlin")  # which the user edits
    path.write_text(json.dumps({"timezone": "Europe/Berlin", "languages": ["de-DE", "de", "en"], "screen": [2560, 1440]}))

    await harvest("cloudflare", cache=cache, profile="berlin")

    (verdict,) = verdicts(sandbox)
    assert verdict.passed
    signals = verdict.signals
    assert signals["locale"]["internationalization"]["timezone"] == "Europe/Berlin"
    assert signals["locale"]["languages"] == {"languages": ["de-DE", "de", "en"], "language": "de-DE"}
    assert (signals["device"]["screenResolution"]["width"], signals["device"]["screenResolution"]["height"]) == (2560, 1440)
    sent = lowered(sandbox.requests(PLAYGROUND, "/cdn-cgi/challenge-platform/h/b/flow/")[-1].headers)
    assert sent["accept-language"] == "de-DE,de;q=0.9,en;q=0.8"


async def test_an_enabled_runtime_domain_is_caught(sandbox: Sandbox) -> None:
    """The CDP leak the harvester avoids is one the sandbox's fpscanner really sees."""
    from nodriver import cdp

    options = LaunchOptions(proxy=sandbox.proxy_url, spki_pins=sandbox.certificates.spki_pins)
    async with Chromium(options) as chromium:
        tab = chromium.browser.main_tab
        await tab.send(cdp.runtime.enable())
        await tab.send(cdp.page.navigate(f"https://{PLAYGROUND}/"))
        for _ in range(300):
            if verdicts(sandbox):
                break
            await tab.sleep(0.05)
    (verdict,) = verdicts(sandbox)
    assert verdict.fpscanner == ["hasCDP"] and not verdict.passed


@pytest.fixture
def display(monkeypatch: pytest.MonkeyPatch):
    try:
        with Xvfb() as screen:
            monkeypatch.setenv("DISPLAY", screen.display)
            yield screen
    except XvfbUnavailable as exc:
        pytest.skip(f"headful test needs Xvfb: {exc}")


async def test_headful_login_under_xvfb_passes_with_no_flags(sandbox: Sandbox, cache: AuthCache, display: Xvfb) -> None:
    record = await login("cloudflare", cache=cache, timeout=60)

    assert record.source == "login" and {c.name for c in record.cookies} == {"cf_clearance", "__cf_bm"}
    (verdict,) = verdicts(sandbox)
    assert verdict.passed, verdict.summary()
    check_consistent(verdict)
    screen = verdict.signals["device"]["screenResolution"]
    assert (screen["width"], screen["height"]) == display.size

