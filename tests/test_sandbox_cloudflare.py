"""The Cloudflare replica: the challenge and its bindings, cookies, and the four generations."""
from __future__ import annotations

import asyncio
import json
import time

import pytest
from client_helpers import eventually
from curl_cffi.curl import CurlError
from curl_cffi.requests.exceptions import RequestException
from harvestkit.sandbox import GENERATIONS, Sandbox, make_reply
from harvestkit.sandbox.shortcuts import CHROME_UA, sandbox_session, solve_challenge
from sandbox_helpers import PLAYGROUND, cleared_session, sse_events

MESSAGES = [{"role": "user", "content": "Hi there", "parts": [{"type": "text", "text": "Hi there"}]}]
MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
WS_URL = "wss://playground.ai.cloudflare.com/agents/playground/Cloudflare-AI-Playground-test?_pk=1"


def cookie_header(response, name: str) -> str:
    return next(c for c in response.headers.get_list("set-cookie") if c.startswith(name + "="))


async def test_plain_tls_client_is_challenged_and_cannot_earn_clearance(sandbox: Sandbox) -> None:
    async with sandbox_session(sandbox.env, impersonate=None, headers={"User-Agent": CHROME_UA}) as plain:
        page = await plain.get(f"{PLAYGROUND}/")
        assert not await solve_challenge(plain)
    assert page.status_code == 403
    assert page.headers["cf-mitigated"] == "challenge"
    for marker in ("<title>Just a moment...</title>", "challenge-platform", "cType: 'managed'", "challenge-error-text"):
        assert marker in page.text
    assert "cf-please-wait" not in page.text  # today's pages have none (spec 4.2)
    verdicts = sandbox.requests(path="/cdn-cgi/challenge-platform/h/b/flow/")
    assert verdicts[-1].status == 403 and verdicts[-1].note == "refused: server flagged tlsNotBrowser"


async def test_challenge_sets_bound_clearance_and_cf_bm(sandbox: Sandbox) -> None:
    async with sandbox_session(sandbox.env, headers={"User-Agent": CHROME_UA}) as http:
        first = await http.get(f"{PLAYGROUND}/")
        assert await solve_challenge(http)
        verdict = sandbox.requests(path="/cdn-cgi/challenge-platform/h/b/flow/")[-1]
        page = await http.get(f"{PLAYGROUND}/")
        other_ua = await http.get(f"{PLAYGROUND}/", headers={"User-Agent": CHROME_UA.replace("136", "135")})
        clearance = http.cookies.get("cf_clearance")
    assert verdict.status == 200
    assert page.status_code == 200 and "Workers AI LLM Playground" in page.text
    assert other_ua.status_code == 403 and sandbox.requests()[-1].note == "clearance bound to another user agent"
    cf_bm = cookie_header(first, "__cf_bm")
    assert "Domain=.ai.cloudflare.com" in cf_bm and "HttpOnly" in cf_bm and "SameSite=None" in cf_bm
    expires = time.mktime(time.strptime(cf_bm.split("Expires=")[1].split(";")[0], "%a, %d %b %Y %H:%M:%S GMT"))
    assert abs(expires - time.mktime(time.gmtime()) - 1800) < 5
    # The same cookie from a client with another TLS fingerprint is challenged again.
    async with sandbox_session(sandbox.env, impersonate=None, headers={"User-Agent": CHROME_UA}) as plain:
        plain.cookies.set("cf_clearance", clearance, domain=".ai.cloudflare.com", secure=True)
        copied = await plain.get(f"{PLAYGROUND}/")
    assert copied.status_code == 403
    assert sandbox.requests()[-1].note == "clearance bound to another TLS fingerprint"


@pytest.mark.parametrize(
    ("report", "user_agent", "reason"),
    [
        ({"webdriver": True}, CHROME_UA, "refused: server flagged webdriver"),
        ({}, CHROME_UA.replace("Chrome/", "HeadlessChrome/"), "refused: server flagged headlessUserAgent"),
        ({"botd": None}, CHROME_UA, "refused: botd flagged noReport"),
        ({"ua": "something else"}, CHROME_UA, "refused: server flagged userAgentMismatch"),
        ({"token": "reused"}, CHROME_UA, "refused: unknown or reused challenge token"),
        ({"botd": {"bot": True, "flagged": ["detectWebDriver"]}}, CHROME_UA, "refused: botd flagged detectWebDriver"),
        ({"fpscanner": "bm90IGEgcGF5bG9hZA=="}, CHROME_UA, "refused: fpscanner flagged noReport"),
    ],
)
async def test_challenge_refuses_automation(sandbox: Sandbox, report: dict, user_agent: str, reason: str) -> None:
    async with sandbox_session(sandbox.env) as http:
        clean: dict = {}
        original = http.post

        async def post(url: str, json: dict, headers: dict):  # the shortcut's clean report, spoiled
            clean.update(json)
            return await original(url, json=json | report, headers=headers)

        http.post = post
        assert not await solve_challenge(http, user_agent)
        assert "cf_clearance" not in http.cookies and clean["token"]
    assert sandbox.requests()[-1].status == 403
    assert sandbox.requests()[-1].note == reason


async def test_server_checks_client_hints_and_languages(sandbox: Sandbox) -> None:
    async with sandbox_session(sandbox.env) as http:
        original = http.post

        async def post(url: str, json: dict, headers: dict):
            headers = headers | {"Sec-CH-UA": '"Chromium";v="120"', "Sec-CH-UA-Platform": '"Windows"', "Accept-Language": ""}
            return await original(url, json=json, headers=headers)

        http.post = post
        assert not await solve_challenge(http)
    assert sandbox.requests()[-1].note == "refused: server flagged secChUaMismatch, platformHintMismatch, noAcceptLanguage"


async def test_a_replayed_fingerprint_is_refused(sandbox: Sandbox) -> None:
    async with sandbox_session(sandbox.env) as http:
        original, sent = http.post, []

        async def post(url: str, json: dict, headers: dict):
            sent.append(json["fpscanner"])
            return await original(url, json=json | {"fpscanner": sent[0]}, headers=headers)

        http.post = post
        assert await solve_challenge(http)
        http.cookies.clear()
        assert not await solve_challenge(http)
    assert sandbox.requests()[-1].note == "refused: server flagged replayedFingerprint"


async def test_clearance_expires_and_expire_all(sandbox: Sandbox) -> None:
    sandbox.set_knobs(clearance_lifetime=1.5)  # cookie expiry has whole-second precision
    async with await cleared_session(sandbox) as http:
        assert (await http.get(f"{PLAYGROUND}/")).status_code == 200
        await asyncio.sleep(1.6)
        assert (await http.get(f"{PLAYGROUND}/")).status_code == 403
    sandbox.set_knobs(clearance_lifetime=1800)
    async with await cleared_session(sandbox) as http:
        sandbox.expire_all()
        assert (await http.get(f"{PLAYGROUND}/")).status_code == 403


async def test_cf_bm_is_refreshed_and_rotation_kills_old_values(sandbox: Sandbox) -> None:
    sandbox.set_knobs(cf_bm_lifetime=2)
    async with await cleared_session(sandbox) as http:
        await asyncio.sleep(1.1)  # past half its life: the next response re-sets it
        response = await http.get(f"{PLAYGROUND}/")
        assert "__cf_bm=" in " ".join(response.headers.get_list("set-cookie"))
    sandbox.set_knobs(rotate_cookies=True)
    async with await cleared_session(sandbox) as http:
        old = http.cookies.get("__cf_bm")
        assert (await http.get(f"{PLAYGROUND}/")).status_code == 200
        assert http.cookies.get("__cf_bm") != old
        http.cookies.set("__cf_bm", old, domain=".ai.cloudflare.com", secure=True)
        assert (await http.get(f"{PLAYGROUND}/")).status_code == 403
    assert sandbox.requests()[-1].note == "stale __cf_bm after rotation"


async def test_interactive_challenge_wants_a_click(sandbox: Sandbox) -> None:
    sandbox.set_knobs(interactive_challenge=True)
    async with sandbox_session(sandbox.env) as http:
        page = await http.get(f"{PLAYGROUND}/")
    assert "Verify you are human" in page.text and "cType: 'interactive'" in page.text


async def test_agents_generation_hides_the_http_api(sandbox: Sandbox) -> None:
    async with await cleared_session(sandbox) as http:
        assert (await http.get(f"{PLAYGROUND}/api/models")).status_code == 404
        assert (await http.post(f"{PLAYGROUND}/api/inference", json={})).status_code == 404


async def ws_frames(ws, until) -> list[dict]:
    frames = []
    while True:
        frame = json.loads(await ws.recv_str(timeout=10))
        frames.append(frame)
        if until(frame):
            return frames


def chat_request(request_id: str, text: str = "Hi there") -> str:
    body = {"messages": [{"id": "m1", "role": "user", "parts": [{"type": "text", "text": text}]}], "trigger": "submit-message"}
    return json.dumps({"type": "cf_agent_use_chat_request", "id": request_id, "init": {"method": "POST", "body": json.dumps(body)}})


async def test_agents_websocket_models_and_chat(sandbox: Sandbox) -> None:
    sandbox.set_knobs(agents_protocol="legacy")  # the late-2025 frames (test_fidelity_agents has 2026's)
    async with await cleared_session(sandbox) as http, http.ws_connect(WS_URL, headers={"Origin": PLAYGROUND}) as ws:
        hello = await ws_frames(ws, lambda f: f["type"] == "cf_agent_mcp_servers")
        assert [f["type"] for f in hello] == ["cf_agent_identity", "cf_agent_state", "cf_agent_mcp_servers"]
        await ws.send_str(json.dumps({"type": "rpc", "id": "r1", "method": "getModels", "args": []}))
        (models,) = await ws_frames(ws, lambda f: f["type"] == "rpc")
        assert models["success"] and models["done"] and any(m["name"] == MODEL for m in models["result"])
        await ws.send_str(json.dumps({"type": "cf_agent_state", "state": {"model": "@cf/qwen/qwq-32b", "system": "Be terse"}}))
        await ws_frames(ws, lambda f: f["type"] == "cf_agent_state")
        await ws.send_str(chat_request("req_1"))
        frames = await ws_frames(ws, lambda f: f.get("done"))
    bodies = [json.loads(f["body"]) for f in frames if f["type"] == "cf_agent_use_chat_response" and f["body"]]
    assert all(f["id"] == "req_1" for f in frames if f["type"] == "cf_agent_use_chat_response")
    text = "".join(b["delta"] for b in bodies if b["type"] == "text-delta")
    expected = make_reply([{"role": "user", "parts": [{"type": "text", "text": "Hi there"}]}], system="Be terse")
    assert text == expected.text
    assert any(b["type"] == "reasoning-delta" for b in bodies)
    assert bodies[-1]["type"] == "finish" and bodies[-1]["messageMetadata"]["usage"]["outputTokens"] > 0


async def test_agents_cancel_and_origin(sandbox: Sandbox) -> None:
    sandbox.set_knobs(pace=0.02, reply_tokens=200)
    async with await cleared_session(sandbox) as http, http.ws_connect(WS_URL, headers={"Origin": PLAYGROUND}) as ws:
        await ws.send_str(chat_request("req_9"))
        await ws_frames(ws, lambda f: f["type"] == "cf_agent_use_chat_response")
        await ws.send_str(json.dumps({"type": "cf_agent_chat_request_cancel", "id": "req_9"}))
        for _ in range(100):
            if sandbox.requests(path="/agents/playground/Cloudflare-AI-Playground-test#cf_agent")[0].outcome == "cancelled":
                break
            await asyncio.sleep(0.02)
        with pytest.raises((RequestException, CurlError), match="403"):
            async with http.ws_connect(WS_URL, headers={"Origin": "https://evil.example"}):
                pass
    (chat,) = sandbox.requests(path="/agents/playground/Cloudflare-AI-Playground-test#cf_agent")
    assert chat.outcome == "cancelled"
    assert sandbox.requests()[-1].status == 403


async def test_agents_faults(sandbox: Sandbox) -> None:
    sandbox.set_knobs(agents_protocol="legacy")  # the late-2025 frames (test_fidelity_agents has 2026's)
    async with await cleared_session(sandbox) as http, http.ws_connect(WS_URL, headers={"Origin": PLAYGROUND}) as ws:
        sandbox.fault("cloudflare.chat", error_at=3)
        await ws.send_str(chat_request("e1"))
        frames = await ws_frames(ws, lambda f: f.get("done"))
        assert frames[-1]["error"] is True
        assert json.loads(frames[-2]["body"])["type"] == "error"
        sandbox.fault("cloudflare.chat", truncate_after=2)
        await ws.send_str(chat_request("t1"))
        with pytest.raises((RequestException, CurlError)):
            await ws_frames(ws, lambda f: f.get("done"))
    chats = "/agents/playground/Cloudflare-AI-Playground-test#cf_agent"
    await eventually(lambda: [r.outcome for r in sandbox.requests(path=chats)] == ["error", "truncated"])


@pytest.mark.parametrize("generation", [g for g in GENERATIONS if g != "agents"])
async def test_http_generations(sandbox: Sandbox, generation: str) -> None:
    sandbox.set_knobs(generation=generation)
    body = {"messages": MESSAGES, "lora": None, "model": MODEL, "max_tokens": 2048, "stream": True,
            "system_message": "You are a helpful assistant", "tools": []}
    async with await cleared_session(sandbox) as http:
        models = await http.get(f"{PLAYGROUND}/api/models")
        response = await http.post(f"{PLAYGROUND}/api/inference", json=body)
        unknown = await http.post(f"{PLAYGROUND}/api/inference", json=body | {"model": "@cf/none"})
    assert models.headers["cache-control"] == "s-maxage=300"
    assert any(m["name"] == MODEL and m["task"]["name"] == "Text Generation" for m in models.json()["models"])
    assert unknown.status_code == 400 and unknown.content == b""
    expected = make_reply(MESSAGES, system="You are a helpful assistant")
    if generation == "data-stream":
        assert response.headers["content-type"] == "text/x-unknown"
        lines = response.content.decode().splitlines()
        assert lines[0].startswith("f:") and lines[-2].startswith("e:") and lines[-1].startswith("d:")
        text = "".join(json.loads(line[2:]) for line in lines if line.startswith("0:"))
        assert json.loads(lines[-1][2:])["usage"]["completionTokens"] == len(expected.tokens)
    elif generation == "ui-stream":
        events = sse_events(response.content)
        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        text = "".join(c["delta"] for c in chunks if c["type"] == "text-delta")
        assert chunks[-1]["type"] == "finish" and chunks[-1]["finishReason"] == "stop"
    else:
        events = sse_events(response.content)
        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        text = "".join(c["response"] for c in chunks)
        assert chunks[-1]["usage"]["completion_tokens"] == len(expected.tokens)
    assert text == expected.text


@pytest.mark.parametrize("generation", ["data-stream", "ui-stream", "sse"])
async def test_http_generation_faults(sandbox: Sandbox, generation: str) -> None:
    sandbox.set_knobs(generation=generation)
    body = {"messages": MESSAGES, "model": MODEL, "stream": True}
    async with await cleared_session(sandbox) as http:
        sandbox.fault("cloudflare.chat", error_at=2)
        errored = (await http.post(f"{PLAYGROUND}/api/inference", json=body)).content
        sandbox.fault("cloudflare.chat", status=429, retry_after=1)
        limited = await http.post(f"{PLAYGROUND}/api/inference", json=body)
        sandbox.fault("cloudflare.chat", status=403)
        challenged = await http.post(f"{PLAYGROUND}/api/inference", json=body)
    assert b"Error during inference" in errored.splitlines()[-1] or b"Error during inference" in errored.split(b"\n\n")[-2]
    assert limited.status_code == 429 and limited.headers["retry-after"] == "1"
    assert challenged.status_code == 403 and "Just a moment..." in challenged.text


async def test_models_route_fault(sandbox: Sandbox) -> None:
    sandbox.set_knobs(generation="data-stream")
    async with await cleared_session(sandbox) as http:
        sandbox.fault("cloudflare.models", status=503, retry_after=2)
        failed = await http.get(f"{PLAYGROUND}/api/models")
        ok = await http.get(f"{PLAYGROUND}/api/models")
    assert failed.status_code == 503 and failed.headers["retry-after"] == "2" and "error code" in failed.text
    assert ok.status_code == 200


async def test_agents_bad_chat_request_and_unknown_model(sandbox: Sandbox) -> None:
    sandbox.set_knobs(agents_protocol="legacy")  # the late-2025 frames (test_fidelity_agents has 2026's)
    async with await cleared_session(sandbox) as http, http.ws_connect(WS_URL, headers={"Origin": PLAYGROUND}) as ws:
        await ws.send_str(json.dumps({"type": "cf_agent_use_chat_request", "id": "bad", "init": {"body": "{}"}}))
        (bad,) = [f for f in await ws_frames(ws, lambda f: f.get("done")) if f.get("id") == "bad"]
        await ws.send_str(json.dumps({"type": "cf_agent_state", "state": {"model": "@cf/none"}}))
        await ws.send_str(chat_request("nomodel"))
        frames = await ws_frames(ws, lambda f: f.get("done"))
    assert bad["error"] is True and json.loads(bad["body"])["errorText"] == "Invalid chat request"
    assert frames[-1]["error"] is True and "Model not found: @cf/none" in frames[-1]["body"]


@pytest.mark.parametrize("order", ["random", "fixed"])
async def test_field_order_of_chunks_and_frames(sandbox: Sandbox, order: str) -> None:
    sandbox.set_knobs(generation="ui-stream", field_order=order, reply_tokens=120)
    body = {"messages": MESSAGES, "model": MODEL, "stream": True}
    async with await cleared_session(sandbox) as http:
        events = sse_events((await http.post(f"{PLAYGROUND}/api/inference", json=body)).content)
        sandbox.set_knobs(generation="agents")
        async with http.ws_connect(WS_URL, headers={"Origin": PLAYGROUND}) as ws:
            await ws.send_str(chat_request("f1"))
            frames = [json.loads(f) for f in [await ws.recv_str(timeout=10) for _ in range(40)]]
    deltas = [json.loads(e, object_pairs_hook=lambda pairs: tuple(k for k, _ in pairs)) for e in events[:-1]]
    orders = {keys for keys in deltas if set(keys) == {"type", "id", "delta"}}
    answers = [f for f in frames if f.get("type") == "cf_agent_use_chat_response"]
    frame_orders = {tuple(f) for f in answers if set(f) == {"type", "id", "body", "done"}}
    assert len(orders) == (1 if order == "fixed" else 6)  # 120 text deltas: all 6 orders of 3 keys (odds 1 - 1e-9)
    assert (len(frame_orders) > 1) is (order == "random")
    assert "".join(json.loads(e)["delta"] for e in events[:-1] if json.loads(e)["type"] == "text-delta").startswith("Sandbox reply")


def test_pre_encoded_frames_are_the_bytes_and_the_orders_of_reorder() -> None:
    """`shaped` and `ui_bodies` (the agents answer's hot path) give exactly what
    `compact(reorder(...))` gives: the same bytes in key order, every order of the keys, about
    as often each, and any string (quotes, control characters, non-ASCII) escaped the same."""
    import collections
    import random

    from harvestkit.sandbox import cloudflare_wire as wire

    texts = ['plain', 'q"uo\\te', "ünï\u2028", "\x00\n\t", ""]
    frame = {"type": "cf_agent_use_chat_response", "id": "req_1", "body": "", "done": False}
    in_order = wire.shaped(frame, "body", None)
    assert [in_order(text) for text in texts] == [wire.compact({**frame, "body": text}) for text in texts]
    shuffled = wire.shaped(frame, "body", random.Random(7))
    seen = collections.Counter(shuffled("x") for _ in range(24_000))
    reference = {wire.compact(wire.reorder({**frame, "body": "x"}, random.Random(seed))) for seed in range(2_000)}
    assert set(seen) == reference and len(seen) == 24 and min(seen.values()) > 800  # 1,000 each expected
    assert all(json.loads(shuffled(text)) == {**frame, "body": text} for text in texts)

    reply = make_reply([{"role": "user", "content": "hi"}], reply_tokens=40, reasoning=True)
    def plain(chunk: dict) -> dict:
        return {k: v for k, v in chunk.items() if k != "messageId"}

    chunks = [plain(chunk) for chunk in wire.ui_chunks(reply)]
    assert wire.ui_count(reply) == len(chunks) > 40
    for rng in (None, random.Random(3)):
        assert [plain(json.loads(body)) for body in wire.ui_bodies(reply, rng, lambda chunk: chunk)] == chunks
    in_order_bodies = [b for b in wire.ui_bodies(reply, None, lambda chunk: chunk) if "messageId" not in b]
    assert in_order_bodies == [wire.compact(c) for c in wire.ui_chunks(reply) if "messageId" not in c]
