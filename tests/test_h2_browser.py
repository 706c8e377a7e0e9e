"""The harvester's Chromium over HTTP/2: it passes the HTTP/2 fingerprint check, streams as DATA
frames, and survives a reset stream, an idle GOAWAY and a server that offers HTTP/1.1 only."""
from __future__ import annotations

import asyncio
import json

import pytest
from harvester_helpers import need_browser, wait_until
from harvestkit.harvester.browser import Chromium, LaunchOptions
from harvestkit.sandbox import Sandbox
from harvestkit.sandbox.cloudflare_wire import TEXT_MODELS
from harvestkit.sandbox.textgen import make_reply
from sandbox_helpers import PLAYGROUND

need_browser()
pytestmark = pytest.mark.timeout(180)
PROMPT = [{"role": "user", "content": "Tell me a story"}]

# Reads the ui-stream answer with the Streams API, as the playground does; resolves with what arrived.
STREAM_JS = """
(async () => {
  const response = await fetch("/api/inference", {method: "POST", headers: {"content-type": "application/json"},
    body: JSON.stringify({model: %s, messages: %s})});
  const reader = response.body.getReader(), decoder = new TextDecoder();
  let body = "", reads = 0;
  try {
    for (;;) { const {done, value} = await reader.read(); if (done) break; reads++; body += decoder.decode(value, {stream: true}); }
    return JSON.stringify({ok: true, body, reads});
  } catch (error) { return JSON.stringify({ok: false, body, reads, error: String(error)}); }
})()
"""


def options(sandbox: Sandbox) -> LaunchOptions:
    return LaunchOptions(proxy=sandbox.proxy_url, spki_pins=sandbox.certificates.spki_pins)


def text_of(body: str) -> str:
    events = [json.loads(line[6:]) for line in body.split("\n") if line.startswith("data: {")]
    return "".join(e.get("delta", "") for e in events if e.get("type") == "text-delta")


async def stream_in_page(tab, timeout: float = 20.0) -> dict:
    script = STREAM_JS % (json.dumps(sorted(TEXT_MODELS)[0]), json.dumps(PROMPT))
    async with asyncio.timeout(timeout):
        return json.loads(await tab.evaluate(script, await_promise=True))


async def test_chromium_streams_over_h2_and_survives_reset_and_goaway(sandbox: Sandbox) -> None:
    sandbox.set_knobs(generation="ui-stream", reply_tokens=40, pace=0.002)
    expected = make_reply(PROMPT, reply_tokens=40).text
    async with Chromium(options(sandbox)) as chromium:
        tab = await chromium.browser.get(f"{PLAYGROUND}/")
        await wait_until(tab, "document.body && document.body.dataset.state === 'ready'")
        whole = await stream_in_page(tab)
        assert whole["ok"] and text_of(whole["body"]) == expected

        sandbox.fault("cloudflare.chat", reset_after=10)
        cut = await stream_in_page(tab)
        assert not cut["ok"] and "finish" not in cut["body"]
        assert text_of(cut["body"]) and expected.startswith(text_of(cut["body"]))

        sandbox.set_knobs(h2_idle_goaway=0.3)
        connections = sandbox.handshakes("playground.ai.cloudflare.com")
        await stream_in_page(tab)
        await asyncio.sleep(1.0)  # idle: the server sends GOAWAY and closes
        after = await stream_in_page(tab)
        assert after["ok"] and text_of(after["body"]) == expected
        assert sandbox.handshakes("playground.ai.cloudflare.com") > connections

    chats = sandbox.requests("playground.ai.cloudflare.com", "/api/inference")
    assert [r.outcome for r in chats[:2]] == ["complete", "reset"]
    assert {r.protocol for r in sandbox.requests("playground.ai.cloudflare.com")} == {"h2"}
    page_tunnels = [t for t in sandbox.state.tunnels if t.host == "playground.ai.cloudflare.com" and t.protocol == "h2"]
    # (Chromium also opens spare connections that never carry a request: no fingerprint there.)
    assert "chrome" in {t.h2_class for t in page_tunnels} and "other" not in {t.h2_class for t in page_tunnels}
    assert not any("HTTP/2 fingerprint" in (r.note or "") for r in sandbox.requests())


async def test_chromium_on_a_server_that_offers_http1_only(sandbox: Sandbox) -> None:
    sandbox.set_knobs(generation="ui-stream", http2=False)
    async with Chromium(options(sandbox)) as chromium:
        tab = await chromium.browser.get(f"{PLAYGROUND}/")
        await wait_until(tab, "document.body && document.body.dataset.state === 'ready'")
        answer = await stream_in_page(tab)
    assert answer["ok"] and text_of(answer["body"]) == make_reply(PROMPT).text
    assert {r.protocol for r in sandbox.requests()} == {"http/1.1"}
