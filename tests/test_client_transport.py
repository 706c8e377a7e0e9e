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
    # requests wait for a handle while live WebSockets hold them all: the pool, and push_curl
    assert callable(getattr(AsyncSession, "push_curl", None)), "handles no longer come back through push_curl"
    assert session.pool.empty() is False, "the session's handle pool is no longer session.pool"
    assert "drain_on_error" in inspect.signature(AsyncSession.ws_connect).parameters
    assert hasattr(CurlInfo, "COOKIELIST"), "a WebSocket upgrade's Set-Cookie is read with COOKIELIST"
    assert issubclass(curl_errors.Timeout, curl_errors.RequestException)
    # WebSocket reads frames itself: curl_cffi's reader task, the handle's ws_recv and its codes
    from curl_cffi import Curl, CurlECode, CurlError, CurlWsFlag
    from curl_cffi.requests.websockets import AsyncWebSocket

    assert "_read_task" in AsyncWebSocket.__slots__, "the socket's reader task is no longer _read_task"
    assert isinstance(AsyncWebSocket.loop, property), "a socket no longer names its event loop"
    assert hasattr(CurlInfo, "ACTIVESOCKET")
    # ... with libcurl's curl_ws_recv through curl_cffi's cffi module, on the handle's CURL*
    from curl_cffi._wrapper import ffi, lib

    assert callable(lib.curl_ws_recv), "curl_cffi's cffi module no longer exposes curl_ws_recv"
    meta = ffi.new("struct curl_ws_frame *")
    assert isinstance(meta.flags, int) and isinstance(meta.bytesleft, int), "curl_ws_frame lost flags or bytesleft"
    curl = Curl()
    try:
        assert curl._curl is not None, "a Curl no longer keeps its CURL* as _curl"
        error = curl._get_error(int(CurlECode.GOT_NOTHING), "WS_RECV")
        assert isinstance(error, CurlError) and error.code == CurlECode.GOT_NOTHING, "a Curl no longer makes CurlError of a code"
    finally:
        curl.close()
    assert curl._curl is None, "a closed Curl no longer drops its CURL*"
    assert {"AGAIN", "RECV_ERROR", "GOT_NOTHING"} <= set(CurlECode.__members__)
    assert {"TEXT", "BINARY", "CONT", "CLOSE"} <= set(CurlWsFlag.__members__)


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


async def test_a_websocket_reads_its_frames_from_the_curl_handle(client_env) -> None:
    """curl_cffi's reader task never runs (so it took no frame); the server's greeting frames
    come in order; a silence is TimeoutError after the idle timeout; aclose ends the socket."""
    import asyncio
    import json

    import pytest
    from harvestkit.client import CurlTransport, Request
    from harvestkit.client.impersonate import harvested_identity

    await client_env.harvester("cloudflare", cache=client_env.cache)
    record = await client_env.cache.get("cloudflare")
    client_env.sandbox.set_knobs(generation="agents")
    env = client_env.sandbox.env
    origin = f"https://{PLAYGROUND}"
    request = Request(
        "GET", f"wss://{PLAYGROUND}/agents/playground/Cloudflare-AI-Playground-t?_pk=1",
        harvested_identity(record.user_agent, record.client_hints), headers={"Origin": origin},
        cookies={c.name: c.value for c in record.cookies}, proxy=env["HARVESTKIT_PROXY"], ca_bundle=env["HARVESTKIT_CA_BUNDLE"],
    )  # fmt: skip
    transport = CurlTransport("cloudflare")
    try:
        ws = await transport.websocket(request)
        await asyncio.sleep(0.2)  # the greeting arrives; a running reader task would take it
        assert ws._raw._read_task.cancelled() and ws._raw._receive_queue.empty()
        kinds = [json.loads(await ws.recv(5))["type"] for _ in range(3)]
        assert kinds == ["cf_agent_identity", "cf_agent_state", "cf_agent_mcp_servers"]
        while (frame := await _next_or_silence(ws)) is not None:  # the rest of the greeting
            assert json.loads(frame)["type"].startswith("cf_agent_")
        with pytest.raises(TimeoutError):
            await ws.recv(0.05)
        await ws.aclose()
        assert ws._raw.closed
    finally:
        await transport.aclose()


async def _next_or_silence(ws) -> str | None:
    try:
        return await ws.recv(0.3)
    except TimeoutError:
        return None


async def test_a_websocket_message_larger_than_one_read_comes_whole_and_an_oversized_one_is_refused() -> None:
    """A 300 KiB text frame (curl hands it over in pieces of at most 128 KiB) is one message;
    one above the 4 MiB limit is a ProtocolError, not a memory blow-up. A loopback server."""
    import socket as socket_module

    import pytest
    from aiohttp import web
    from harvestkit.client import CurlTransport, ProtocolError, Request
    from harvestkit.client.impersonate import harvested_identity

    big, small = "é" * (150 << 10), "after the big one"  # 300 KiB of UTF-8

    async def socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False, max_msg_size=0)
        await ws.prepare(request)
        await ws.send_str(big)
        await ws.send_str(small)
        await ws.send_str("x" * (5 << 20))
        await ws.receive()  # until the client goes
        return ws

    app = web.Application()
    app.router.add_get("/ws", socket)
    runner = web.AppRunner(app)
    await runner.setup()
    listening = socket_module.socket()
    listening.bind(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    await web.SockSite(runner, listening).start()
    transport = CurlTransport("cloudflare")
    try:
        identity = harvested_identity("Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0 Safari/537.36", {})
        ws = await transport.websocket(Request("GET", f"ws://127.0.0.1:{port}/ws", identity))
        assert await ws.recv(5) == big
        assert await ws.recv(5) == small
        with pytest.raises(ProtocolError, match="larger than 4 MiB"):
            await ws.recv(5)
        await ws.aclose()
    finally:
        await transport.aclose()
        await runner.cleanup()
