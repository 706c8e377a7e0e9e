"""The Cerebras replica: the web demo's Auth.js session and demo key, and the API's wire format."""
from __future__ import annotations

import asyncio
import json
import time

import pytest
from curl_cffi.requests.exceptions import RequestException
from harvestkit.sandbox import Sandbox, make_reply
from harvestkit.sandbox.shortcuts import CHROME_UA, browser_headers, sandbox_session, sign_in, solve_challenge
from client_helpers import eventually
from sandbox_helpers import CEREBRAS_API, CEREBRAS_WEB, sse_events

RATE_HEADERS = (
    "x-ratelimit-limit-requests-day",
    "x-ratelimit-limit-tokens-minute",
    "x-ratelimit-remaining-requests-day",
    "x-ratelimit-remaining-tokens-minute",
    "x-ratelimit-reset-requests-day",
    "x-ratelimit-reset-tokens-minute",
)
HELLO = [{"role": "user", "content": "Tell me about quartz"}]


async def demo_key(sandbox: Sandbox) -> str:
    async with sandbox_session(sandbox.env) as http:
        session = await sign_in(http)
    return session["user"]["demoApiKey"]


async def chat(sandbox: Sandbox, key: str, **body):
    body.setdefault("model", "gemma-4-31b")
    body.setdefault("messages", HELLO)
    async with sandbox_session(sandbox.env) as http:
        return await http.post(
            f"{CEREBRAS_API}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
        )


# -- the web demo ---------------------------------------------------------------------------


async def test_sign_in_gives_a_session_with_a_demo_key(sandbox: Sandbox) -> None:
    async with sandbox_session(sandbox.env) as http:
        assert (await http.get(f"{CEREBRAS_WEB}/api/auth/session")).json() is None
        session = await sign_in(http)
        assert session["user"]["email"] == sandbox.email
        assert session["user"]["demoApiKey"].startswith("csk-")
        assert session["expires"].endswith("Z")
        again = await http.get(f"{CEREBRAS_WEB}/api/auth/session")
        assert again.json()["user"]["demoApiKey"] == session["user"]["demoApiKey"]
        set_cookie = again.headers.get_list("set-cookie")
        graphql = await http.post(
            f"{CEREBRAS_WEB}/api/graphql",
            json={"operationName": "GetMyDemoApiKey", "variables": {},
                  "query": "query GetMyDemoApiKey {\n  GetMyDemoApiKey\n}"},
        )
    assert graphql.json() == {"data": {"GetMyDemoApiKey": session["user"]["demoApiKey"]}}
    # The session cookie is re-set on every call: a domain cookie for .cerebras.ai, 30 days.
    (cookie,) = [c for c in set_cookie if c.startswith("__Secure-authjs.session-token=")]
    attributes = {part.split("=")[0].strip().lower(): part for part in cookie.split(";")}
    assert "Domain=.cerebras.ai" in cookie and "secure" in attributes and "httponly" in attributes
    expires = time.mktime(time.strptime(attributes["expires"].split("=", 1)[1].strip(), "%a, %d %b %Y %H:%M:%S GMT"))
    assert 29 * 86400 < expires - time.mktime(time.gmtime()) <= 30 * 86400 + 5


async def test_wrong_password_and_missing_csrf_are_refused(sandbox: Sandbox) -> None:
    async with sandbox_session(sandbox.env) as http:
        assert await sign_in(http, password="wrong") is None
        page = await http.get(f"{CEREBRAS_WEB}/api/auth/signin?error=CredentialsSignin")
        assert 'id="error"' in page.text
        forged = await http.post(
            f"{CEREBRAS_WEB}/api/auth/callback/credentials",
            data={"csrfToken": "forged", "email": sandbox.email, "password": sandbox.password},
            allow_redirects=False,
        )
        assert "error=MissingCSRF" in forged.headers["location"]
        assert (await http.get(f"{CEREBRAS_WEB}/api/auth/session")).json() is None


async def test_graphql_signed_out_and_unknown_operation(sandbox: Sandbox) -> None:
    async with sandbox_session(sandbox.env) as http:
        signed_out = await http.post(f"{CEREBRAS_WEB}/api/graphql", json={"operationName": "GetMyDemoApiKey"})
        unknown = await http.post(f"{CEREBRAS_WEB}/api/graphql", json={"operationName": "Other"})
    assert signed_out.json()["data"] is None and signed_out.json()["errors"]
    assert unknown.status_code == 400


async def test_demo_keys_expire_and_the_session_hands_out_a_new_one(sandbox: Sandbox) -> None:
    sandbox.set_knobs(demo_key_lifetime=0.3)
    async with sandbox_session(sandbox.env) as http:
        first = (await sign_in(http))["user"]["demoApiKey"]
        assert (await chat(sandbox, first)).status_code == 200
        await asyncio.sleep(0.4)
        expired = await chat(sandbox, first)
        assert expired.status_code == 401
        assert expired.json()["code"] == "wrong_api_key"
        second = (await http.get(f"{CEREBRAS_WEB}/api/auth/session")).json()["user"]["demoApiKey"]
    assert second != first
    assert (await chat(sandbox, second)).status_code == 200


async def test_expire_all_ends_sessions_and_keys(sandbox: Sandbox) -> None:
    async with sandbox_session(sandbox.env) as http:
        key = (await sign_in(http))["user"]["demoApiKey"]
        sandbox.expire_all()
        assert (await http.get(f"{CEREBRAS_WEB}/api/auth/session")).json() is None
    assert (await chat(sandbox, key)).status_code == 401


async def test_rotating_cookies_kills_the_old_session_value(sandbox: Sandbox) -> None:
    sandbox.set_knobs(rotate_cookies=True)
    async with sandbox_session(sandbox.env) as http:
        await sign_in(http)
        old = http.cookies.get("__Secure-authjs.session-token")
        response = await http.get(f"{CEREBRAS_WEB}/api/auth/session")
        assert response.json()["user"]
        new = http.cookies.get("__Secure-authjs.session-token")
    assert new and new != old
    async with sandbox_session(sandbox.env) as stale:
        stale.cookies.set("__Secure-authjs.session-token", old, domain=".cerebras.ai", secure=True)
        assert (await stale.get(f"{CEREBRAS_WEB}/api/auth/session")).json() is None


async def test_home_page_needs_javascript(sandbox: Sandbox) -> None:
    async with sandbox_session(sandbox.env) as http:
        challenged = await http.get(f"{CEREBRAS_WEB}/")  # Cloudflare's challenge guards page views
        assert await solve_challenge(http, host="inference.cerebras.ai")
        page = await http.get(f"{CEREBRAS_WEB}/", headers=browser_headers(CHROME_UA))
    assert challenged.status_code == 403 and challenged.headers["cf-mitigated"] == "challenge"
    assert http.cookies.get("cf_clearance", domain=".cerebras.ai")
    assert '<body class="loading">' in page.text
    assert "classList.remove(\"loading\")" in page.text and "document.cookie" in page.text


# -- the API --------------------------------------------------------------------------------


async def test_auth_errors_and_rate_limit_headers_everywhere(sandbox: Sandbox) -> None:
    async with sandbox_session(sandbox.env) as http:
        no_auth = await http.get(f"{CEREBRAS_API}/v1/models")
        bad_key = await http.get(f"{CEREBRAS_API}/v1/models", headers={"Authorization": "Bearer csk-nope"})
        warming = await http.get(f"{CEREBRAS_API}/v1/tcp_warming")
        missing = await http.get(f"{CEREBRAS_API}/v2/none")
    assert no_auth.status_code == 403 and no_auth.json() == {"detail": "Not authenticated"}
    assert bad_key.status_code == 401
    assert bad_key.json() == {"message": "Wrong API Key", "type": "invalid_request_error",
                              "param": "api_key", "code": "wrong_api_key"}
    assert warming.status_code == 200 and missing.status_code == 404
    for response in (no_auth, bad_key, warming, missing):
        for header in RATE_HEADERS:
            float(response.headers[header])


async def test_models(sandbox: Sandbox) -> None:
    key = await demo_key(sandbox)
    async with sandbox_session(sandbox.env) as http:
        listing = (await http.get(f"{CEREBRAS_API}/v1/models", headers={"Authorization": f"Bearer {key}"})).json()
        one = await http.get(f"{CEREBRAS_API}/v1/models/gemma-4-31b", headers={"Authorization": f"Bearer {key}"})
        retired = await http.get(f"{CEREBRAS_API}/v1/models/llama3.1-8b", headers={"Authorization": f"Bearer {key}"})
        sandbox.set_knobs(retire_models=False)
        legacy = (await http.get(f"{CEREBRAS_API}/v1/models", headers={"Authorization": f"Bearer {key}"})).json()
    assert listing["object"] == "list"
    ids = [m["id"] for m in listing["data"]]
    assert ids == ["gpt-oss-120b", "gemma-4-31b"]  # the 2026-08 list by default
    assert one.json()["owned_by"] == "Google" and retired.status_code == 404
    legacy_ids = [m["id"] for m in legacy["data"]]
    assert "llama3.1-8b" in legacy_ids and "gemma-4-31b" in legacy_ids and "llama3.1-70b" not in legacy_ids


async def test_stream_has_cerebras_shape(sandbox: Sandbox) -> None:
    key = await demo_key(sandbox)
    response = await chat(sandbox, key, stream=True)
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    events = sse_events(response.content)
    assert "[DONE]" not in events  # Cerebras just ends the stream
    chunks = [json.loads(e) for e in events]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    expected = make_reply(HELLO)
    assert text == expected.text
    assert text.startswith("Sandbox reply to: Tell me about quartz. the the")
    assert chunks[-2]["choices"][0]["delta"] == {}
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "stop"
    assert last["usage"]["completion_tokens"] == len(expected.tokens)
    assert last["usage"]["total_tokens"] == last["usage"]["prompt_tokens"] + last["usage"]["completion_tokens"]
    assert set(last["time_info"]) >= {"queue_time", "prompt_time", "completion_time", "total_time", "created"}


async def test_reasoning_tool_calls_length_and_whole_responses(sandbox: Sandbox) -> None:
    key = await demo_key(sandbox)
    reasoning = [json.loads(e) for e in sse_events((await chat(sandbox, key, model="gpt-oss-120b", stream=True)).content)]
    deltas = [c["choices"][0]["delta"] for c in reasoning]
    first_content = next(i for i, d in enumerate(deltas) if "content" in d)
    assert any("reasoning" in d for d in deltas[:first_content])
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}}]
    sandbox.set_knobs(fragment_tool_calls=False)  # pinned: by default a stream picks at random
    called = [json.loads(e) for e in sse_events((await chat(sandbox, key, tools=tools, stream=True)).content)]
    calls = [c["choices"][0]["delta"]["tool_calls"] for c in called if "tool_calls" in c["choices"][0]["delta"]]
    assert len(calls) == 1  # a tool call arrives whole in one delta
    assert calls[0][0]["function"] == {"name": "lookup", "arguments": json.dumps({"query": "Tell me about quartz"})}
    assert called[-1]["choices"][0]["finish_reason"] == "tool_calls"
    cut = [json.loads(e) for e in sse_events((await chat(sandbox, key, max_completion_tokens=3, stream=True)).content)]
    assert cut[-1]["choices"][0]["finish_reason"] == "length" and cut[-1]["usage"]["completion_tokens"] == 3
    whole = (await chat(sandbox, key)).json()
    assert whole["object"] == "chat.completion"
    assert whole["choices"][0]["message"]["content"] == make_reply(HELLO).text
    assert whole["usage"]["prompt_tokens"] > 0 and "time_info" in whole


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"model": "llama3.1-70b"}, 404, "model_not_found"),
        ({"messages": []}, 422, "wrong_api_format"),
        ({"temperature": 3}, 400, "wrong_api_format"),
        ({"model": ""}, 400, "wrong_api_format"),
    ],
)
async def test_request_errors(sandbox: Sandbox, body: dict, status: int, code: str) -> None:
    response = await chat(sandbox, await demo_key(sandbox), **body)
    assert response.status_code == status
    assert response.json()["code"] == code
    assert "error" not in response.json()  # top-level, not wrapped


async def test_forced_429_with_and_without_retry_after(sandbox: Sandbox) -> None:
    key = await demo_key(sandbox)
    sandbox.fault("cerebras.chat", status=429, retry_after=2)
    with_header = await chat(sandbox, key)
    sandbox.fault("cerebras.chat", status=429, retry_after_ms=150)
    with_ms = await chat(sandbox, key)
    sandbox.fault("cerebras.chat", status=429)
    without = await chat(sandbox, key)
    after = await chat(sandbox, key)
    assert with_header.status_code == 429 and with_header.headers["retry-after"] == "2"
    assert with_ms.headers["retry-after-ms"] == "150"
    assert without.status_code == 429 and "retry-after" not in without.headers
    assert without.json()["code"] == "request_quota_exceeded"
    assert float(without.headers["x-ratelimit-reset-tokens-minute"]) == 0.25
    assert after.status_code == 200  # times=1 by default


@pytest.mark.parametrize("status", [500, 503, 401, 403])
async def test_forced_statuses(sandbox: Sandbox, status: int) -> None:
    key = await demo_key(sandbox)
    sandbox.fault("cerebras.chat", status=status, times=2)
    assert [(await chat(sandbox, key)).status_code for _ in range(3)] == [status, status, 200]


async def test_truncated_stream_ends_mid_body(sandbox: Sandbox) -> None:
    key = await demo_key(sandbox)
    sandbox.fault("cerebras.chat", truncate_after=4)
    received = b""
    async with sandbox_session(sandbox.env) as http:
        response = await http.post(
            f"{CEREBRAS_API}/v1/chat/completions", stream=True,
            json={"model": "gemma-4-31b", "messages": HELLO, "stream": True},
            headers={"Authorization": f"Bearer {key}"},
        )
        with pytest.raises(RequestException):
            async for piece in response.aiter_content():
                received += piece
    assert len(sse_events(received)) == 4
    (entry,) = sandbox.requests(path="/v1/chat/completions")
    await eventually(lambda: entry.outcome == "truncated")  # logged once the handler has returned


@pytest.mark.parametrize("event_error", [False, True])
async def test_malformed_line_and_error_mid_stream(sandbox: Sandbox, event_error: bool) -> None:
    key = await demo_key(sandbox)
    sandbox.set_knobs(sse_error_event=event_error)
    sandbox.fault("cerebras.chat", malformed_at=2)
    events = sse_events((await chat(sandbox, key, stream=True)).content)
    with pytest.raises(ValueError):
        json.loads(events[2])
    assert json.loads(events[-1])["usage"]  # the stream went on
    sandbox.fault("cerebras.chat", error_at=3)
    body = (await chat(sandbox, key, stream=True)).content
    events = sse_events(body)
    assert len(events) == 4 and (b"event: error\n" in body) is event_error
    assert json.loads(events[-1]) == {
        "error": {"message": "Internal server error", "type": "server_error", "code": "internal_error"},
        "status_code": 500,
    }


async def test_tool_call_and_error_shapes_vary_per_stream_by_default(sandbox: Sandbox) -> None:
    key = await demo_key(sandbox)
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]
    pieces, error_lines = set(), set()
    for _ in range(24):  # every shape has 1 - 2**-23 odds of showing up
        chunks = [json.loads(e) for e in sse_events((await chat(sandbox, key, tools=tools, stream=True)).content)]
        pieces.add(sum(1 for c in chunks if c["choices"] and "tool_calls" in c["choices"][0]["delta"]))
        sandbox.fault("cerebras.chat", error_at=1)
        error_lines.add(b"event: error\n" in (await chat(sandbox, key, stream=True)).content)
    assert 1 in pieces and max(pieces) >= 3  # whole in one delta, and in fragments
    assert error_lines == {False, True}
    with pytest.raises(ValueError, match="random per stream"):
        sandbox.set_knobs(sse_error_event="sometimes")


async def test_long_replies_and_pace(sandbox: Sandbox) -> None:
    key = await demo_key(sandbox)
    sandbox.set_knobs(reply_tokens=2000)
    chunks = sse_events((await chat(sandbox, key, stream=True)).content)
    assert len(chunks) == 2000 + 3  # role, 2000 tokens, empty delta, final
    sandbox.set_knobs(reply_tokens=5, pace=0.05)
    started = time.monotonic()
    await chat(sandbox, key, stream=True)
    assert time.monotonic() - started >= 0.05 * 8  # role + 5 tokens + 2 closing chunks, each paced


async def test_replies_are_deterministic(sandbox: Sandbox) -> None:
    key = await demo_key(sandbox)
    one, two = [(await chat(sandbox, key)).json()["choices"][0]["message"]["content"] for _ in range(2)]
    other = (await chat(sandbox, key, messages=[{"role": "user", "content": "Something else"}])).json()
    assert one == two and other["choices"][0]["message"]["content"] != one
    with_system = make_reply([{"role": "system", "content": "Be brief"}, *HELLO]).text
    assert "(system: Be brief)" in with_system


async def test_browser_origin_gets_cors(sandbox: Sandbox) -> None:
    async with sandbox_session(sandbox.env) as http:
        preflight = await http.request(
            "OPTIONS", f"{CEREBRAS_API}/v1/chat/completions",
            headers={"Origin": CEREBRAS_WEB, "Access-Control-Request-Headers": "authorization,x-stainless-lang"},
        )
        response = await http.get(f"{CEREBRAS_API}/v1/tcp_warming", headers={"Origin": CEREBRAS_WEB})
    assert preflight.status_code == 204
    assert response.headers["access-control-allow-origin"] == CEREBRAS_WEB


async def test_faults_on_models_and_session_routes(sandbox: Sandbox) -> None:
    key = await demo_key(sandbox)
    sandbox.fault("cerebras.models", status=503, retry_after=1)
    sandbox.fault("cerebras.session", status=500)
    async with sandbox_session(sandbox.env) as http:
        models = await http.get(f"{CEREBRAS_API}/v1/models", headers={"Authorization": f"Bearer {key}"})
        session = await http.get(f"{CEREBRAS_WEB}/api/auth/session")
        again = await http.get(f"{CEREBRAS_WEB}/api/auth/session")
    assert models.status_code == 503 and models.headers["retry-after"] == "1"
    assert session.status_code == 500 and again.status_code == 200
