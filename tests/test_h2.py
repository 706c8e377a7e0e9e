"""HTTP/2 in the sandbox: ALPN, DATA frames, RST_STREAM, GOAWAY, an HTTP/1.1-only server, and the
HTTP/2 fingerprint check; and the client (curl_cffi impersonating Chrome) surviving each."""
from __future__ import annotations

import asyncio
import json
import time

import h2.config
import h2.connection
import h2.settings
import pytest
from client_helpers import eventually
from h2_helpers import h2_request
from harvestkit.client import Cerebras, Cloudflare, StreamBroken, chat
from harvestkit.sandbox import Sandbox
from harvestkit.sandbox.h2fingerprint import NotHTTP2, parse_preface
from harvestkit.sandbox.shortcuts import CHROME_UA, sandbox_session, sign_in
from sandbox_helpers import CEREBRAS_API, CEREBRAS_WEB, PLAYGROUND, cleared_session, control

CHAT = {"model": "gpt-oss-120b", "stream": True, "messages": [{"role": "user", "content": "Tell me a story"}]}


def client_preface(settings: dict[int, int] | None, window: int, pseudo: list[str]) -> bytes:
    """What an h2-library client sends first, with the given SETTINGS, window and pseudo-headers."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    if settings is not None:
        client.local_settings = h2.settings.Settings(client=True, initial_values=settings)
        for code in list(client.local_settings):
            if code not in settings:
                del client.local_settings[code]
    client.initiate_connection()
    if window:
        client.increment_flow_control_window(window)
    values = {":method": "GET", ":authority": "example.test", ":scheme": "https", ":path": "/"}
    client.send_headers(1, [(name, values[name]) for name in pseudo], end_stream=True)
    return client.data_to_send()


# -- the fingerprint, pure ------------------------------------------------------------------------
def test_fingerprint_of_chrome_and_of_a_plain_h2_client() -> None:
    chrome = parse_preface(
        client_preface({1: 65536, 2: 0, 4: 6291456, 6: 262144}, 15663105, [":method", ":authority", ":scheme", ":path"])
    )
    assert chrome is not None
    assert chrome.akamai == "1:65536;2:0;4:6291456;6:262144|15663105|0|m,a,s,p"
    assert chrome.client_class == "chrome" and chrome.mismatch() is None

    plain = parse_preface(client_preface(None, 0, [":method", ":path", ":authority", ":scheme"]))
    assert plain is not None and plain.client_class == "other"
    assert "SETTINGS" in plain.mismatch()
    # Chrome's SETTINGS but another pseudo-header order is not Chrome either.
    reordered = parse_preface(
        client_preface({1: 65536, 2: 0, 4: 6291456, 6: 262144}, 15663105, [":method", ":scheme", ":path", ":authority"])
    )
    assert reordered.client_class == "other" and "m,s,p,a" in reordered.mismatch()


def test_fingerprint_waits_for_the_first_request_and_refuses_other_protocols() -> None:
    whole = client_preface(None, 0, [":method", ":authority", ":scheme", ":path"])
    for cut in (3, 24, 40, len(whole) - 1):
        assert parse_preface(whole[:cut]) is None
    with pytest.raises(NotHTTP2):
        parse_preface(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")


# -- ALPN and the log -----------------------------------------------------------------------------
async def test_every_host_speaks_h2_and_the_log_says_so(sandbox: Sandbox) -> None:
    async with sandbox_session(sandbox.env) as http:
        for url in (f"{CEREBRAS_WEB}/api/auth/session", f"{CEREBRAS_API}/v1/tcp_warming", f"{PLAYGROUND}/"):
            response = await http.get(url)
            assert response.http_version == 3  # curl's CURL_HTTP_VERSION_2_0
    logged = sandbox.requests()
    assert len(logged) == 3 and {r.protocol for r in logged} == {"h2"}
    assert {r.h2_fingerprint for r in logged} == {"1:65536;2:0;4:6291456;6:262144|15663105|0|m,a,s,p"}
    assert {t.protocol for t in sandbox.state.tunnels} == {"h2"}
    assert {t.h2_class for t in sandbox.state.tunnels} == {"chrome"}
    assert {t.h2_header_priority for t in sandbox.state.tunnels} == {"1:0:256"}  # exclusive, on 0, weight 256
    status, log = control(sandbox, "GET", "/__sandbox/log?host=api.cerebras.ai")
    assert status == 200 and [entry["protocol"] for entry in log] == ["h2"]


async def test_http1_only_server(sandbox: Sandbox) -> None:
    sandbox.set_knobs(http2=False)
    async with sandbox_session(sandbox.env) as http:
        response = await http.get(f"{CEREBRAS_API}/v1/tcp_warming")
    assert response.status_code == 200 and response.http_version == 2  # CURL_HTTP_VERSION_1_1
    (logged,) = sandbox.requests()
    assert logged.protocol == "http/1.1" and logged.h2_fingerprint is None


async def test_client_streams_over_h2_and_over_http1_only(client_env) -> None:
    first = await chat("Tell me a story", model="gpt-oss-120b")
    client_env.sandbox.set_knobs(http2=False)
    from harvestkit.client import aclose

    await aclose()  # a new connection, which now gets HTTP/1.1 only
    second = await chat("Tell me a story", model="gpt-oss-120b")
    assert first.text == second.text and first.text.startswith("Sandbox reply to: Tell me a story.")
    await eventually(lambda: len(client_env.chats()) == 2)
    assert [r.protocol for r in client_env.chats()] == ["h2", "http/1.1"]


# -- DATA frames ------------------------------------------------------------------------------------
async def signed_in_key(sandbox: Sandbox) -> str:
    async with sandbox_session(sandbox.env) as http:
        return (await sign_in(http))["user"]["demoApiKey"]


def chat_over_h2(sandbox: Sandbox, key: str, **kwargs) -> object:
    return h2_request(
        sandbox,
        "api.cerebras.ai",
        "/v1/chat/completions",
        method="POST",
        headers={"authorization": f"Bearer {key}", "content-type": "application/json", "user-agent": CHROME_UA},
        body=json.dumps(CHAT).encode(),
        **kwargs,
    )


def event_texts(body: bytes) -> list[str]:
    return [event for event in body.decode().split("\n\n") if event]


async def test_stream_goes_out_as_data_frames_that_split_events(sandbox: Sandbox) -> None:
    key = await signed_in_key(sandbox)
    sandbox.set_knobs(reply_tokens=60, pace=0.002)
    split = await asyncio.to_thread(chat_over_h2, sandbox, key)
    assert split.status == 200 and split.ended and split.reset_code is None
    events = event_texts(split.body)
    assert '"finish_reason":"stop"' in events[-1] and len(events) > 60
    # Frame ends that are not event ends: the events were cut at random places.
    assert sum(not frame.endswith(b"\n\n") for frame in split.frames) >= 5

    sandbox.set_knobs(split_writes=False)
    whole = await asyncio.to_thread(chat_over_h2, sandbox, key)
    assert all(frame.endswith(b"\n\n") for frame in whole.frames if frame)  # paced: one event a frame
    assert len(event_texts(whole.body)) == len(events)


# -- RST_STREAM -------------------------------------------------------------------------------------
async def test_reset_after_n_events_sends_rst_stream(sandbox: Sandbox) -> None:
    key = await signed_in_key(sandbox)
    sandbox.set_knobs(pace=0.001)
    sandbox.fault("cerebras.chat", reset_after=4)
    reset = await asyncio.to_thread(chat_over_h2, sandbox, key)
    assert reset.status == 200 and not reset.ended
    assert reset.reset_code == 2  # INTERNAL_ERROR
    assert len(event_texts(reset.body)) == 4
    (logged,) = sandbox.requests("api.cerebras.ai", "/v1/chat")
    await eventually(lambda: logged.outcome == "reset")  # logged when the handler has returned
    assert logged.protocol == "h2"


@pytest.mark.parametrize("protocol", ["h2", "http/1.1"])
async def test_client_keeps_the_text_when_the_stream_is_reset(client_env, protocol: str) -> None:
    client_env.sandbox.set_knobs(reply_tokens=30, pace=0.002, http2=protocol == "h2")
    whole = await chat("Tell me a story", model="gpt-oss-120b")
    client_env.sandbox.fault("cerebras.chat", reset_after=12)
    stream = Cerebras.stream("Tell me a story", model="gpt-oss-120b")
    with pytest.raises(StreamBroken) as caught:
        async with asyncio.timeout(15):
            async with stream:
                async for _ in stream:
                    pass
    assert caught.value.text and whole.text.startswith(caught.value.text) and caught.value.text != whole.text
    await eventually(lambda: client_env.chats()[-1].outcome == "reset")
    assert client_env.chats()[-1].protocol == protocol


async def test_cloudflare_client_keeps_the_text_when_the_stream_is_reset(client_env) -> None:
    client_env.sandbox.set_knobs(generation="ui-stream", reply_tokens=30, pace=0.002)
    model = "@cf/google/gemma-4-26b-a4b-it"  # not a reasoning model (the default, kimi-k2.6, thinks first)
    whole = await Cloudflare.chat("Tell me a story", model=model, transport="ui-stream")
    client_env.sandbox.fault("cloudflare.chat", reset_after=10)
    with pytest.raises(StreamBroken) as caught:
        async with asyncio.timeout(15):
            await Cloudflare.chat("Tell me a story", model=model, transport="ui-stream")
    assert caught.value.text and whole.text.startswith(caught.value.text) and caught.value.text != whole.text
    chats = client_env.sandbox.requests("playground.ai.cloudflare.com", "/api/inference")
    assert chats[-1].protocol == "h2"


# -- GOAWAY -----------------------------------------------------------------------------------------
async def test_idle_connection_gets_goaway(sandbox: Sandbox) -> None:
    sandbox.set_knobs(h2_idle_goaway=0.2)
    exchange = await asyncio.to_thread(h2_request, sandbox, "api.cerebras.ai", "/v1/tcp_warming", wait_after=3.0)
    assert exchange.status == 200 and exchange.ended
    assert exchange.goaway_code == 0  # NO_ERROR


async def test_client_reconnects_after_goaway(client_env) -> None:
    sandbox = client_env.sandbox
    first = await chat("Tell me a story", model="gpt-oss-120b")
    sandbox.set_knobs(h2_idle_goaway=0.2)
    connections = sandbox.handshakes("api.cerebras.ai")
    await chat("Tell me a story", model="gpt-oss-120b")  # on the kept-alive connection; then idle
    await asyncio.sleep(0.6)
    started = time.monotonic()
    again = await chat("Tell me a story", model="gpt-oss-120b")
    assert again.text == first.text and time.monotonic() - started < 5
    assert sandbox.handshakes("api.cerebras.ai") == connections + 1  # a new connection after the GOAWAY


# -- the fingerprint check ----------------------------------------------------------------------------
async def test_plain_h2_client_with_a_chrome_user_agent_is_challenged(sandbox: Sandbox) -> None:
    page = await asyncio.to_thread(h2_request, sandbox, "playground.ai.cloudflare.com", "/", headers={"user-agent": CHROME_UA})
    assert page.status == 403 and page.headers["cf-mitigated"] == "challenge"
    (logged,) = sandbox.requests("playground.ai.cloudflare.com", "/")
    assert logged.protocol == "h2" and "HTTP/2 fingerprint contradicts a Chrome user agent" in logged.note


@pytest.mark.filterwarnings("ignore:Akamai fingerprint was altered")
async def test_chrome_tls_with_another_h2_fingerprint_is_challenged_despite_clearance(sandbox: Sandbox) -> None:
    session = await cleared_session(sandbox)
    async with session:
        assert (await session.get(f"{PLAYGROUND}/")).status_code == 200
        firefox_h2 = "1:65536;2:0;4:131072;5:16384|12517377|0|m,p,a,s"
        async with sandbox_session(sandbox.env, akamai=firefox_h2, headers={"User-Agent": CHROME_UA}) as odd:
            odd.cookies.update({c.name: c.value for c in session.cookies.jar})
            refused = await odd.get(f"{PLAYGROUND}/")
    assert refused.status_code == 403 and refused.headers["cf-mitigated"] == "challenge"
    last = sandbox.requests("playground.ai.cloudflare.com", "/")[-1]
    assert last.client_class == "chrome" and "SETTINGS order (1, 2, 4, 5)" in last.note
