"""The gateway in front of the sandbox, with the real openai SDK as its client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import openai
import pytest
from harvestkit.gateway import serve

KEY = "gw-test-key-0123456789"
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]


@pytest.fixture
async def gateway(client_env) -> AsyncIterator[str]:
    """The gateway's base URL, with a key, on 127.0.0.1 in this test's loop."""
    async with serve(port=0, api_key=KEY) as url:
        yield url


def sdk(url: str, key: str = KEY, **kwargs) -> openai.AsyncOpenAI:
    kwargs.setdefault("max_retries", 0)
    return openai.AsyncOpenAI(base_url=url + "/v1", api_key=key, **kwargs)


async def collect(stream) -> tuple[str, str, list, list]:
    """(text, reasoning, finish reasons, chunks) of a streamed answer."""
    text, reasoning, finish, chunks = [], [], [], []
    async for chunk in stream:
        chunks.append(chunk)
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
            reasoning.append(getattr(choice.delta, "reasoning", None) or "")
            if choice.finish_reason:
                finish.append(choice.finish_reason)
    return "".join(text), "".join(reasoning), finish, chunks


async def test_streamed_answer_from_cerebras_with_usage(gateway, client_env) -> None:
    async with sdk(gateway) as client:
        stream = await client.chat.completions.create(
            model="cerebras/gemma-4-31b",
            messages=[{"role": "user", "content": "Hello gateway"}],
            stream=True,
            stream_options={"include_usage": True},
            temperature=0.5, max_completion_tokens=6, stop=["zzz"], top_p=0.9, seed=7,
        )
        text, _, finish, chunks = await collect(stream)
    assert text == "Sandbox reply to: Hello gateway. the" and finish == ["length"]  # the limit reached upstream
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 6
    assert {c.model for c in chunks} == {"cerebras/gemma-4-31b"} and len({c.id for c in chunks}) == 1
    (upstream,) = client_env.chats()
    assert upstream.outcome == "complete"


async def test_whole_answer_from_cloudflare_by_bare_alias(gateway) -> None:
    async with sdk(gateway) as client:
        answer = await client.chat.completions.create(
            model="qwq-32b", messages=[{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi cloud"}]
        )
    assert answer.object == "chat.completion" and answer.model == "cloudflare/@cf/qwen/qwq-32b"
    message = answer.choices[0].message
    assert message.content.startswith("Sandbox reply to: Hi cloud.") and "(system: Be brief)" in message.content
    assert message.reasoning.startswith("Thinking about")  # an extra field the SDK keeps
    assert answer.choices[0].finish_reason == "stop"  # no usage: today's agents socket sends none (spec 4.2)


async def test_streamed_answer_from_cloudflare(gateway, client_env) -> None:
    async with sdk(gateway) as client:
        stream = await client.chat.completions.create(
            model="cloudflare/@cf/meta/llama-3.1-8b-instruct-fast", messages=[{"role": "user", "content": "Stream it"}], stream=True
        )
        text, _, finish, _ = await collect(stream)
    assert text.startswith("Sandbox reply to: Stream it.") and finish == ["stop"]
    assert [r.outcome for r in client_env.chats("playground.ai.cloudflare.com", "/agents")][-1] == "complete"


async def test_reasoning_and_tool_calls_stream_as_deltas(gateway) -> None:
    async with sdk(gateway) as client:
        stream = await client.chat.completions.create(
            model="gpt-oss", messages=[{"role": "user", "content": "weather"}], tools=TOOLS, stream=True
        )
        _, reasoning, finish, chunks = await collect(stream)
        whole = await client.chat.completions.create(
            model="cerebras/gpt-oss-120b", messages=[{"role": "user", "content": "weather"}], tools=TOOLS, tool_choice="auto"
        )
    assert reasoning.startswith("Thinking about") and finish == ["tool_calls"]
    (call,) = [t for c in chunks for choice in c.choices for t in (choice.delta.tool_calls or [])]
    assert call.index == 0 and call.function.name == "lookup" and call.function.arguments == '{"q": "weather"}'
    assert whole.choices[0].message.tool_calls[0].function.name == "lookup"
    assert whole.choices[0].finish_reason == "tool_calls"


async def test_model_listing(gateway) -> None:
    async with sdk(gateway) as client:
        ids = [m.id async for m in client.models.list()]
        one = await client.models.retrieve("cloudflare/@cf/qwen/qwq-32b")
        with pytest.raises(openai.NotFoundError):
            await client.models.retrieve("nope")
    assert "cerebras/gemma-4-31b" in ids and "cloudflare/@cf/qwen/qwq-32b" in ids
    assert "gemma-4-31b" in ids and "gpt-oss" in ids and "qwq-32b" in ids  # unambiguous bare ids and aliases
    assert "gpt-oss-120b" not in ids and "cerebras/gpt-oss-120b" in ids  # both offer it: prefix only
    assert one.owned_by == "cloudflare"


async def test_request_errors_map_to_sdk_classes(gateway) -> None:
    async with sdk(gateway) as client:
        with pytest.raises(openai.BadRequestError) as bad:
            await client.chat.completions.create(model="cerebras/gemma-4-31b", messages=[])
        assert bad.value.code == "invalid_type" and bad.value.param == "messages"
        with pytest.raises(openai.BadRequestError):
            await client.chat.completions.create(model="cerebras/gemma-4-31b", messages=[{"role": "user", "content": "x"}], temperature="hot")
        with pytest.raises(openai.BadRequestError) as upstream:  # passed through, refused by the service
            await client.chat.completions.create(model="cerebras/gemma-4-31b", messages=[{"role": "user", "content": "x"}], temperature=1.9)
        assert "temperature: must be between 0 and 1.5" in upstream.value.message
        with pytest.raises(openai.NotFoundError) as unknown:
            await client.chat.completions.create(model="llama-9000", messages=[{"role": "user", "content": "x"}])
        assert unknown.value.code == "model_not_found"
        with pytest.raises(openai.NotFoundError) as ambiguous:
            await client.chat.completions.create(model="gpt-oss-120b", messages=[{"role": "user", "content": "x"}])
        assert "'cerebras/gpt-oss-120b' or 'cloudflare/gpt-oss-120b'" in ambiguous.value.message
        with pytest.raises(openai.NotFoundError):  # the provider's live list does not have it
            await client.chat.completions.create(model="cerebras/llama-9000", messages=[{"role": "user", "content": "x"}])
    async with sdk(gateway, key="wrong-key") as client:
        with pytest.raises(openai.AuthenticationError) as wrong:
            await client.models.list()
        assert wrong.value.code == "invalid_api_key" and "wrong-key" not in str(wrong.value)


async def test_raw_http_errors_keep_openai_shape(gateway) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    async with aiohttp.ClientSession(gateway) as http:
        cases = [
            (http.post("/v1/chat/completions", data=b"{not json", headers=auth), 400, "invalid_json"),
            (http.post("/v1/chat/completions", json={"messages": [{"role": "user"}]}, headers=auth), 400, "missing_field"),
            (http.post("/v1/chat/completions", data=b"x" * (9 << 20), headers=auth), 413, "request_too_large"),
            (http.get("/v1/models"), 401, "missing_api_key"),
            (http.get("/v1/nothing", headers=auth), 404, "not_found"),
            (http.get("/v1/chat/completions", headers=auth), 405, "method_not_allowed"),
        ]
        for call, status, code in cases:
            async with call as response:
                body = await response.json()
            assert (response.status, body["error"]["code"]) == (status, code), body
            assert set(body["error"]) == {"message", "type", "code", "param"}
        async with http.get("/health") as response:  # open: it says nothing about the sessions
            assert response.status == 200


async def test_upstream_errors_map_to_sdk_classes(gateway, client_env) -> None:
    messages = [{"role": "user", "content": "x"}]
    async with sdk(gateway) as client:
        client_env.sandbox.fault("cerebras.chat", status=429, retry_after=2)
        with pytest.raises(openai.RateLimitError) as limited:
            await client.chat.completions.create(model="cerebras/gemma-4-31b", messages=messages)
        assert limited.value.response.headers["retry-after"] == "2"
        client_env.sandbox.fault("cerebras.chat", status=500)
        with pytest.raises(openai.InternalServerError) as failed:
            await client.chat.completions.create(model="cerebras/gemma-4-31b", messages=messages)
        assert failed.value.status_code == 502 and failed.value.type == "upstream_error"
        client_env.sandbox.fault("cerebras.chat", status=503)
        with pytest.raises(openai.InternalServerError) as unavailable:
            await client.chat.completions.create(model="cerebras/gemma-4-31b", messages=messages, stream=True)
        assert unavailable.value.status_code == 503
        client_env.harvester.signed_in = False
        client_env.sandbox.expire_all()
        with pytest.raises(openai.InternalServerError) as no_session:
            await client.chat.completions.create(model="cerebras/gemma-4-31b", messages=messages)
    assert no_session.value.status_code == 503 and no_session.value.type == "upstream_auth_error"
    assert no_session.value.response.headers["x-should-retry"] == "false"
    assert "harvest a fresh session" in no_session.value.message


async def test_failure_mid_stream_reaches_the_sdk(gateway, client_env) -> None:
    client_env.sandbox.fault("cerebras.chat", error_at=4)
    async with sdk(gateway) as client:
        stream = await client.chat.completions.create(
            model="cerebras/gemma-4-31b", messages=[{"role": "user", "content": "Break"}], stream=True
        )
        received = []
        with pytest.raises(openai.APIError) as caught:
            async for chunk in stream:
                received.append(chunk)
    assert received and "failed mid-way" in caught.value.message
    assert caught.value.body["type"] == "upstream_error"


async def test_disconnect_mid_stream_cancels_upstream(gateway, client_env) -> None:
    client_env.sandbox.set_knobs(pace=0.02, reply_tokens=400)
    async with sdk(gateway) as client:
        for model, host in (("cerebras/gemma-4-31b", "api.cerebras.ai"), ("cloudflare/@cf/qwen/qwq-32b", "playground.ai.cloudflare.com")):
            stream = await client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Long"}], stream=True)
            async for _ in stream:
                break
            await stream.close()
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                outcomes = [r.outcome for r in client_env.sandbox.requests(host) if "chat" in (r.route or "")]
                if outcomes and outcomes[-1] in ("client_disconnected", "cancelled"):
                    break
                await asyncio.sleep(0.05)
            assert outcomes[-1] in ("client_disconnected", "cancelled"), (host, outcomes)


async def test_concurrent_requests_share_the_providers_sessions(gateway, client_env) -> None:
    client_env.sandbox.set_knobs(pace=0.005)
    async with sdk(gateway) as client:

        async def one(i: int) -> str:
            model = "cerebras/gemma-4-31b" if i % 2 else "cloudflare/llama-3.1-8b"
            stream = await client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": f"Question {i}"}], stream=True
            )
            text, _, _, _ = await collect(stream)
            return text

        texts = await asyncio.gather(*(one(i) for i in range(20)))  # from a cold start: one harvest each
        assert all(text.startswith(f"Sandbox reply to: Question {i}.") for i, text in enumerate(texts))
        assert sorted(client_env.harvester.calls) == ["cerebras", "cloudflare"]
        connections = client_env.sandbox.handshakes("api.cerebras.ai")
        for i in range(1, 7, 2):  # later requests reuse the pooled connections
            assert (await one(i)).startswith(f"Sandbox reply to: Question {i}.")
        assert client_env.sandbox.handshakes("api.cerebras.ai") == connections
