"""Cerebras as it is today (spec 4.1) in the sandbox, and the client and harvester surviving it:
retired model ids, fragmented tool calls, `event: error`, the HTML block page, compression, and
the demo key from chat.cerebras.ai's GraphQL."""
from __future__ import annotations

import gzip
import json

import brotli
import pytest
import zstandard
from harvester_helpers import need_browser, sign_in_as_user
from harvestkit.cache import AuthCache
from harvestkit.client import ChallengeError, Cerebras, ModelNotFound, ServerError, StreamBroken, ToolCalls, chat
from harvestkit.sandbox import Sandbox
from harvestkit.sandbox.compression import accepted
from harvestkit.sandbox.shortcuts import sandbox_session, sign_in
from sandbox_helpers import CEREBRAS_API, CEREBRAS_WEB, PLAYGROUND

WEATHER = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]


async def demo_key(sandbox: Sandbox) -> str:
    async with sandbox_session(sandbox.env) as http:
        return (await sign_in(http))["user"]["demoApiKey"]


# -- models ---------------------------------------------------------------------------------------
async def test_retired_models_answer_404_and_are_not_listed(sandbox: Sandbox) -> None:
    key = await demo_key(sandbox)  # retire_models is the default
    auth = {"Authorization": f"Bearer {key}"}
    async with sandbox_session(sandbox.env) as http:
        listed = (await http.get(f"{CEREBRAS_API}/v1/models", headers=auth)).json()
        retired = await http.post(
            f"{CEREBRAS_API}/v1/chat/completions", headers=auth,
            json={"model": "llama-3.3-70b", "messages": [{"role": "user", "content": "Hi"}]},
        )
        live = await http.post(
            f"{CEREBRAS_API}/v1/chat/completions", headers=auth,
            json={"model": "gemma-4-31b", "messages": [{"role": "user", "content": "Hi"}]},
        )
    assert [m["id"] for m in listed["data"]] == ["gpt-oss-120b", "gemma-4-31b"]
    assert retired.status_code == 404 and retired.json()["code"] == "model_not_found"
    assert "llama-3.3-70b" in retired.json()["message"]
    assert live.status_code == 200


async def test_client_names_the_live_models_for_a_retired_id(client_env) -> None:
    with pytest.raises(ModelNotFound) as caught:
        await chat("Hi", model="llama-3.3-70b")
    assert "gpt-oss-120b" in str(caught.value) and "gemma-4-31b" in str(caught.value)
    assert client_env.chats() == []  # refused from the live list, before any chat request
    assert (await chat("Hi", model="gemma-4-31b")).text.startswith("Sandbox reply to: Hi.")


async def test_a_model_retired_after_the_list_was_read_names_the_live_models(client_env) -> None:
    client_env.sandbox.set_knobs(retire_models=False)
    assert (await chat("Hi", model="llama3.1-8b")).text  # listed and served: the list is cached
    client_env.sandbox.set_knobs(retire_models=True)
    with pytest.raises(ModelNotFound) as caught:
        await chat("Hi again", model="llama3.1-8b")
    assert caught.value.status_code == 404 and caught.value.code == "model_not_found"
    assert "gpt-oss-120b" in str(caught.value) and "gemma-4-31b" in str(caught.value)
    assert [r.status for r in client_env.chats()] == [200, 404]
    with pytest.raises(ModelNotFound):  # the renewed list refuses it before sending
        await chat("Once more", model="llama3.1-8b")
    assert len(client_env.chats()) == 2


async def test_a_404_without_a_live_list_keeps_the_services_words(client_env) -> None:
    client_env.sandbox.fault("cerebras.models", status=500, times=None)
    with pytest.raises(ModelNotFound) as caught:
        await chat("Hi", model="llama-3.3-70b", max_retries=0)
    assert "Model llama-3.3-70b does not exist" in str(caught.value)
    assert [r.status for r in client_env.chats()] == [404]


# -- stream shapes --------------------------------------------------------------------------------
async def test_fragmented_tool_call_arrives_in_pieces(sandbox: Sandbox) -> None:
    key = await demo_key(sandbox)
    sandbox.set_knobs(fragment_tool_calls=True)
    async with sandbox_session(sandbox.env) as http:
        response = await http.post(
            f"{CEREBRAS_API}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
            json={"model": "gpt-oss-120b", "stream": True, "tools": WEATHER,
                  "messages": [{"role": "user", "content": "Paris"}]},
        )
    chunks = [json.loads(line[6:]) for line in response.text.split("\n") if line.startswith("data: {")]
    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks if c["choices"][0]["delta"].get("tool_calls")]
    assert len(calls) >= 3 and "id" in calls[0] and all("id" not in call for call in calls[1:])
    assert json.loads("".join(call["function"]["arguments"] for call in calls)) == {"city": "Paris"}


@pytest.mark.parametrize("fragmented", [True, False])
async def test_client_joins_a_fragmented_tool_call(client_env, fragmented: bool) -> None:
    client_env.sandbox.set_knobs(fragment_tool_calls=fragmented)
    stream = Cerebras.stream("Paris", model="gpt-oss-120b", tools=WEATHER)
    async with stream:
        events = [e async for e in stream]
    (calls,) = [e for e in events if isinstance(e, ToolCalls)]
    (call,) = calls.calls
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert call["function"]["name"] == "get_weather"


async def test_event_error_mid_stream(sandbox: Sandbox) -> None:
    key = await demo_key(sandbox)
    sandbox.set_knobs(sse_error_event=True)
    sandbox.fault("cerebras.chat", error_at=3)
    async with sandbox_session(sandbox.env) as http:
        response = await http.post(
            f"{CEREBRAS_API}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
            json={"model": "gpt-oss-120b", "stream": True, "messages": [{"role": "user", "content": "Hi"}]},
        )
    assert "event: error\ndata: {" in response.text and response.text.count("data: ") == 4


@pytest.mark.parametrize("event_error", [True, False])
async def test_client_types_an_event_error_and_keeps_the_text(client_env, event_error: bool) -> None:
    client_env.sandbox.set_knobs(sse_error_event=event_error, reply_tokens=20)
    client_env.sandbox.fault("cerebras.chat", error_at=8)
    with pytest.raises((ServerError, StreamBroken)) as caught:
        await chat("Hi", model="gpt-oss-120b")
    assert "Internal server error" in str(caught.value)
    if isinstance(caught.value, StreamBroken):
        assert caught.value.text


# -- the block page and compression ----------------------------------------------------------------
async def test_api_block_page_is_compressed_html(sandbox: Sandbox) -> None:
    sandbox.set_knobs(api_block_page=True)
    async with sandbox_session(sandbox.env) as http:
        blocked = await http.get(f"{CEREBRAS_API}/v1/models")
    assert blocked.status_code == 403 and "Sorry, you have been blocked" in blocked.text
    assert blocked.headers["server"] == "cloudflare" and blocked.headers["cf-ray"]
    assert blocked.headers["content-encoding"] in ("gzip", "br", "zstd")  # at random among what curl accepts


async def test_client_types_the_block_page(client_env) -> None:
    await chat("Hi", model="gpt-oss-120b")  # harvested, key cached
    client_env.sandbox.set_knobs(api_block_page=True)
    with pytest.raises(ChallengeError) as caught:
        await chat("Hi", model="gpt-oss-120b")
    assert caught.value.status_code == 403 and "<html" not in str(caught.value).lower()


@pytest.mark.parametrize("http2", [True, False])
@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
async def test_json_and_html_are_compressed_as_asked(sandbox: Sandbox, coding: str, http2: bool) -> None:
    sandbox.set_knobs(http2=http2)
    decode = {"gzip": gzip.decompress, "br": brotli.decompress, "zstd": zstandard.decompress}[coding]
    async with sandbox_session(sandbox.env) as http:
        # The raw bytes, as the server sent them (curl does not decode when asked not to).
        page = await http.get(f"{PLAYGROUND}/", headers={"Accept-Encoding": coding}, accept_encoding=None)
        session = await http.get(f"{CEREBRAS_WEB}/api/auth/session", headers={"Accept-Encoding": coding}, accept_encoding=None)
    assert page.headers["content-encoding"] == coding and b"Just a moment" in decode(page.content)
    assert session.headers["content-encoding"] == coding and json.loads(decode(session.content)) is None


async def test_streams_are_never_compressed_and_the_client_decodes_the_rest(client_env) -> None:
    result = await chat("Hi", model="gpt-oss-120b")  # the session JSON and models list came compressed
    assert result.text.startswith("Sandbox reply to: Hi.")
    (stream,) = client_env.chats()
    session = client_env.sandbox.requests("inference.cerebras.ai", "/api/auth/session")
    assert "br" in stream.headers.get("accept-encoding", "") and session
    client_env.sandbox.set_knobs(compress=False)
    assert (await chat("Hi", model="gpt-oss-120b")).text == result.text


async def test_the_client_decodes_zstd(client_env) -> None:
    client_env.sandbox.set_knobs(compress="zstd")  # only zstd, to the clients that accept it
    result = await chat("Hi", model="gpt-oss-120b")  # the session JSON and the models list came as zstd
    assert result.text.startswith("Sandbox reply to: Hi.")
    (listing,) = client_env.sandbox.requests("api.cerebras.ai", "/v1/models")
    assert "zstd" in listing.headers.get("accept-encoding", "")  # so zstd was what it got


async def test_a_named_coding_is_sent_only_to_a_client_that_accepts_it(sandbox: Sandbox) -> None:
    sandbox.set_knobs(compress="zstd")
    async with sandbox_session(sandbox.env) as http:
        plain = await http.get(f"{CEREBRAS_WEB}/api/auth/session", headers={"Accept-Encoding": "gzip, br"}, accept_encoding=None)
    assert "content-encoding" not in plain.headers and plain.json() is None
    with pytest.raises(ValueError, match="compress"):
        sandbox.set_knobs(compress="lzma")


def test_accept_encoding_is_read_with_its_weights() -> None:
    assert accepted("gzip, deflate, br, zstd") == ["gzip", "br", "zstd"]
    assert accepted("br;q=0, gzip;q=0.5") == ["gzip"]
    assert accepted("identity") == [] and accepted("") == []


# -- chat.cerebras.ai --------------------------------------------------------------------------------
async def test_chat_host_serves_the_key_to_the_inference_origin(sandbox: Sandbox) -> None:
    query = {"operationName": "GetMyDemoApiKey", "variables": {}, "query": "query GetMyDemoApiKey {\n  GetMyDemoApiKey\n}"}
    async with sandbox_session(sandbox.env) as http:
        key = (await sign_in(http))["user"]["demoApiKey"]
        answer = await http.post("https://chat.cerebras.ai/api/graphql", json=query, headers={"Origin": CEREBRAS_WEB})
        preflight = await http.options("https://chat.cerebras.ai/api/graphql", headers={"Origin": CEREBRAS_WEB})
    assert answer.json() == {"data": {"GetMyDemoApiKey": key}}
    assert answer.headers["access-control-allow-origin"] == CEREBRAS_WEB
    assert answer.headers["access-control-allow-credentials"] == "true"
    assert preflight.status_code == 204


async def test_harvest_reads_zstd_pages(tmp_path, monkeypatch) -> None:
    need_browser()
    from harvestkit.harvester import login

    monkeypatch.setenv("HARVESTKIT_HOME", str(tmp_path / "home"))
    with Sandbox() as sandbox:
        for name, value in sandbox.env.items():
            monkeypatch.setenv(name, value)
        sandbox.set_knobs(compress="zstd")
        record = await login("cerebras", cache=AuthCache(), headless=True, on_page=sign_in_as_user, timeout=40)
        assert record.api_key == sandbox.accounts.current_key[sandbox.email]
        pages = [r for r in sandbox.requests("inference.cerebras.ai") if r.method == "GET" and r.status == 200]
        assert any("zstd" in r.headers.get("accept-encoding", "") for r in pages)  # Chromium took zstd


@pytest.mark.parametrize("key_host", ["inference.cerebras.ai", "chat.cerebras.ai"])
async def test_harvest_captures_the_key_from_either_graphql_host(tmp_path, monkeypatch, key_host: str) -> None:
    need_browser()
    from harvestkit.harvester import login

    monkeypatch.setenv("HARVESTKIT_HOME", str(tmp_path / "home"))
    with Sandbox() as sandbox:
        for name, value in sandbox.env.items():
            monkeypatch.setenv(name, value)
        sandbox.set_knobs(key_host=key_host, session_has_key=False)
        record = await login("cerebras", cache=AuthCache(), headless=True, on_page=sign_in_as_user, timeout=40)
        assert record.api_key == sandbox.accounts.current_key[sandbox.email]
        asked = [r for r in sandbox.requests(path="/api/graphql") if r.method == "POST"]
        # The page asked key_host (the harvester may also ask inference itself if the page is slow).
        assert any(r.host == key_host and r.status == 200 for r in asked)
