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


def test_the_curl_cffi_surface_the_transport_relies_on() -> None:
    """Everything client/transport.py takes from curl_cffi beyond its documented calls. An
    upgrade that changes one of them fails here, by name, before it fails somewhere else."""
    import inspect

    from curl_cffi import CurlInfo
    from curl_cffi.requests import AsyncSession
    from curl_cffi.requests import exceptions as curl_errors

    session = AsyncSession(discard_cookies=True, max_clients=3)
    assert session.discard_cookies is True, "sessions can no longer be kept cookie-free"
    assert session.max_clients == 3, "the pool size is no longer a session option"
    assert inspect.iscoroutinefunction(AsyncSession.pop_curl), "Transport.send learns the curl handle from pop_curl"
    assert "drain_on_error" in inspect.signature(AsyncSession.ws_connect).parameters
    assert hasattr(CurlInfo, "COOKIELIST"), "a WebSocket upgrade's Set-Cookie is read with COOKIELIST"
    assert issubclass(curl_errors.Timeout, curl_errors.RequestException)


async def test_streamed_responses_and_refused_upgrades_look_as_the_transport_expects(client_env) -> None:
    """A streamed curl_cffi response has the queue, task, abort event and handle the transport
    reads; a refused upgrade names its status; no session ever holds a cookie."""
    from harvestkit.client import AuthError, ChallengeError, CurlTransport, Request
    from harvestkit.client.impersonate import default_identity

    transport = CurlTransport("cloudflare")
    env = client_env.sandbox.env
    common = {"proxy": env["HARVESTKIT_PROXY"], "ca_bundle": env["HARVESTKIT_CA_BUNDLE"]}
    try:
        response = await transport.send(Request("GET", f"https://{PLAYGROUND}/", default_identity(), **common))
        raw = response._raw
        for name in ("queue", "astream_task", "quit_now", "curl"):
            assert hasattr(raw, name), f"a streamed curl_cffi response has no {name!r} any more"
        assert response.status == 403 and response.set_cookies  # the challenge sets __cf_bm
        await response.aclose()
        socket = Request("GET", f"wss://{PLAYGROUND}/agents/playground/x", default_identity(), **common)
        try:
            await transport.websocket(socket)
        except (AuthError, ChallengeError) as refused:
            assert refused.status_code == 403  # "Refused WebSocket upgrade: 403" was understood
        else:
            raise AssertionError("an upgrade without a session was not refused")
        assert len(transport.session().cookies) == 0  # discard_cookies held: nothing reached the jar
    finally:
        await transport.aclose()
