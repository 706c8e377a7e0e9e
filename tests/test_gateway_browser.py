"""The gateway from a real headless Chromium: a chat page on another loopback origin (CORS), and
the status page (with a screenshot kept in test-output/)."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from harvester_helpers import wait_until
from harvestkit.gateway import serve
from harvestkit.harvester.browser import Chromium, LaunchOptions, find_browser
from harvestkit.harvester.errors import BrowserNotFound

try:
    find_browser()
except BrowserNotFound:  # pragma: no cover - CI installs Chromium
    pytest.skip("no Chromium installed", allow_module_level=True)

KEY = "gw-browser-key-0123456789"
OUTPUT = Path(os.environ.get("HARVESTKIT_TEST_OUTPUT") or Path(__file__).resolve().parent.parent / "test-output")

# A chat UI as a web developer writes one: list the models, stream a chat with fetch, and try a
# gateway that has no CORS for this page (the browser must refuse to let the page read it).
CHAT_PAGE = """<!doctype html><meta charset="utf-8"><title>chat ui</title><pre id="out"></pre><script>
const params = new URLSearchParams(location.search);
const gw = params.get("gw"), closed = params.get("closed"), key = params.get("key");
const auth = {"Authorization": "Bearer " + key};
window.result = {};
async function run() {
  const models = await fetch(gw + "/v1/models", {headers: auth});
  result.models = (await models.json()).data.map(m => m.id);
  result.requestId = models.headers.get("x-request-id");
  const response = await fetch(gw + "/v1/chat/completions", {method: "POST",
    headers: {...auth, "Content-Type": "application/json", "X-Request-Id": "page-req-1"},
    body: JSON.stringify({model: "cerebras/gemma-4-31b", stream: true,
                          messages: [{role: "user", content: "Hello from a page"}]})});
  result.status = response.status;
  result.echoedId = response.headers.get("x-request-id");
  const reader = response.body.getReader(), decoder = new TextDecoder();
  let buffer = "", text = "", chunks = 0;
  for (;;) {
    const {done, value} = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, {stream: true});
    let cut;
    while ((cut = buffer.indexOf("\\n\\n")) >= 0) {
      const line = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
      const data = line.replace(/^data: /, "");
      if (data === "[DONE]") { result.done = true; continue; }
      const chunk = JSON.parse(data); chunks++;
      for (const choice of chunk.choices) text += choice.delta.content || "";
    }
  }
  result.text = text; result.chunks = chunks;
  const refused = await fetch(gw + "/v1/models", {headers: {}});  // no key: a readable 401
  result.refusedStatus = refused.status;
  try { await fetch(closed + "/v1/models", {headers: auth}); result.closed = "readable"; }
  catch (error) { result.closed = String(error); }
}
run().catch(error => { result.error = String(error); }).finally(() => { result.finished = true; });
</script>"""


@pytest.fixture
async def page_server() -> AsyncIterator[str]:
    """The chat page, served from its own loopback origin."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=CHAT_PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_a_page_on_another_origin_lists_models_and_streams_a_chat(client_env, page_server) -> None:
    async with (
        serve(port=0, api_key=KEY, cors_origins=[page_server]) as gateway,
        serve(port=0, api_key=KEY) as closed,  # CORS is off by default
        Chromium(LaunchOptions()) as chromium,
    ):
        tab = await chromium.browser.get(f"{page_server}/?gw={gateway}&closed={closed}&key={KEY}")
        await wait_until(tab, "window.result && window.result.finished === true", timeout=30)
        result = json.loads(await tab.evaluate("JSON.stringify(window.result)"))
    assert "error" not in result, result
    assert "cerebras/gemma-4-31b" in result["models"] and result["requestId"].startswith("req_")
    assert result["status"] == 200 and result["done"] and result["chunks"] > 3
    assert result["text"].startswith("Sandbox reply to: Hello from a page.")
    assert result["echoedId"] == "page-req-1"  # the page could read the exposed header
    assert result["refusedStatus"] == 401
    assert result["closed"] == "TypeError: Failed to fetch"


async def test_status_page_shows_sessions_requests_errors_and_config(client_env, tmp_path) -> None:
    from nodriver import cdp

    await client_env.harvester("cerebras", cache=client_env.cache)  # one provider has a session
    OUTPUT.mkdir(parents=True, exist_ok=True)
    async with serve(port=0, api_key=KEY, keys={"alice": "alice-key-0123456789"}, cors_origins=["*"],
                     aliases={"fast": "cerebras/gemma-4-31b"}) as gateway:  # fmt: skip
        import aiohttp

        async with aiohttp.ClientSession(headers={"Authorization": "Bearer alice-key-0123456789"}) as http:
            async with http.post(gateway + "/v1/chat/completions",
                                 json={"model": "fast", "messages": [{"role": "user", "content": "hi"}]}) as ok:  # fmt: skip
                assert ok.status == 200
            async with http.post(gateway + "/v1/chat/completions",
                                 json={"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}) as bad:  # fmt: skip
                assert bad.status == 404
            async with aiohttp.ClientSession() as anonymous, anonymous.get(gateway + "/") as refused:
                assert refused.status == 401 and refused.headers["WWW-Authenticate"].startswith("Basic")
        async with Chromium(LaunchOptions()) as chromium:
            tab = await chromium.browser.get("about:blank")
            await tab.send(cdp.network.enable())
            await tab.send(cdp.network.set_extra_http_headers(cdp.network.Headers({"Authorization": f"Bearer {KEY}"})))
            await tab.get(gateway + "/")
            await wait_until(tab, "document.getElementById('sessions') !== null")
            await tab.evaluate("window.marker = 'before refresh'")
            texts = json.loads(await tab.evaluate(
                "JSON.stringify(Object.fromEntries(['ready','sessions','requests','errors','config']"
                ".map(id => [id, document.getElementById(id).innerText])))"
            ))  # fmt: skip
            html = await tab.evaluate("document.documentElement.outerHTML")
            screenshot = OUTPUT / "status-page.png"
            await tab.save_screenshot(str(screenshot), format="png", full_page=True)
            # it refreshes itself: a new document replaces the marked one
            await wait_until(tab, "window.marker === undefined && document.getElementById('sessions') !== null", timeout=15)
    print(f"status page screenshot: {screenshot}")
    assert screenshot.stat().st_size > 10_000
    assert texts["ready"] == "ready"
    sessions = {line.split("\t")[0]: line.split("\t") for line in texts["sessions"].splitlines()[1:]}
    assert sessions["cerebras"][2] == "yes" and sessions["cerebras"][5] == "yes"  # ready, fresh
    assert sessions["cloudflare"][2] == "no" and "harvestkit harvest cloudflare" in sessions["cloudflare"][7]
    requests = {line.split("\t")[0]: line.split("\t")[1:] for line in texts["requests"].splitlines()[1:]}
    assert requests["cerebras"] == ["1", "1", "0"]
    assert "404" in texts["errors"] and "no-such-model" in texts["errors"]
    assert "alice, default" in texts["config"] and "fast -> cerebras/gemma-4-31b" in texts["config"]
    assert KEY not in html and "alice-key-0123456789" not in html
