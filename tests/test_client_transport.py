"""The curl_cffi transport: one Cookie header on every request kind, and what it relies on."""

from __future__ import annotations

import time

from client_helpers import eventually
from harvestkit.client import Cloudflare

PLAYGROUND = "playground.ai.cloudflare.com"
MODEL = "@cf/meta/llama-3.1-8b-instruct-fast"


async def test_every_request_kind_sends_exactly_one_cookie_header(client_env) -> None:
    """HTTP, WebSocket upgrades, and HTTP after an upgrade rotated ``__cf_bm``: one header each
    (curl_cffi 0.17 put the upgrade's Set-Cookie into the session's jar, then sent it again)."""
    await client_env.harvester("cloudflare", cache=client_env.cache)
    since = time.time()
    client_env.sandbox.set_knobs(generation="agents", rotate_cookies=True)
    for index in range(2):  # the upgrade re-sets __cf_bm; the second upgrade presents the new one
        assert (await Cloudflare.chat(f"socket {index}", model=MODEL, transport="agents")).text
    client_env.sandbox.set_knobs(generation="data-stream")
    for index in range(2):
        assert (await Cloudflare.chat(f"http {index}", model=MODEL, transport="data-stream")).text
    await eventually(lambda: sum(r.method == "POST" for r in client_env.sandbox.requests(PLAYGROUND)) >= 2)
    sent = [r for r in client_env.sandbox.requests(PLAYGROUND) if r.time >= since and r.method != "WS"]
    kinds = {("upgrade" if r.status == 101 else r.method) for r in sent}
    assert {"upgrade", "POST"} <= kinds, kinds
    for request in sent:
        assert "cookie" not in request.repeated_headers, (request.method, request.path, request.repeated_headers)
        assert "cf_clearance" in request.cookies and "__cf_bm" in request.cookies
    assert client_env.harvester.calls == ["cloudflare"]  # no request was refused for a stale cookie
