"""Strict input: what no provider (or the generation in use) can honour is a 400, never dropped."""

from __future__ import annotations

import json
import os
import stat

import aiohttp
import openai
import pytest
from harvestkit.client import BadRequest
from harvestkit.gateway import GatewayError, serve
from harvestkit.gateway.chat_request import parse_chat_request
from harvestkit.gateway.errors import from_client_error
from harvestkit.gateway.keys import KeyConfigError, Keys, parse_keys_file, parse_keys_variable
from harvestkit.gateway.upstream import _questionable, check_generation

HI = [{"role": "user", "content": "hi"}]


def raw(**fields) -> bytes:
    return json.dumps({"model": "m", "messages": HI, **fields}).encode()


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        (b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}', None, "invalid_number"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "top_p": -Infinity}', None, "invalid_number"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 1e999}', None, "invalid_number"),
        (raw(n=3), "n", "unsupported_parameter"),
        (raw(logprobs=True), "logprobs", "unsupported_parameter"),
        (raw(top_logprobs=2), "top_logprobs", "unsupported_parameter"),
        (raw(frequency_penalty=0.5), "frequency_penalty", "unsupported_parameter"),
        (raw(logit_bias={"50256": -100}), "logit_bias", "unsupported_parameter"),
        (raw(modalities=["text", "audio"]), "modalities", "unsupported_parameter"),
        (raw(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}]),
         "messages[0].content[0].type", "unsupported_content"),
        (raw(messages=[{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "input_audio"}]}]),
         "messages[0].content[1].type", "unsupported_content"),
    ],
)
def test_what_cannot_be_honoured_is_refused(body: bytes, param: str | None, code: str) -> None:
    with pytest.raises(GatewayError) as caught:
        parse_chat_request(body)
    assert (caught.value.status, caught.value.param, caught.value.code) == (400, param, code)
    assert param is None or param.split("[")[0] in caught.value.message


def test_no_op_values_and_text_parts_pass() -> None:
    chat = parse_chat_request(raw(logprobs=False, frequency_penalty=0, presence_penalty=0.0, logit_bias={}, n=1,
                                  messages=[{"role": "user", "content": [{"type": "text", "text": "a"}]}]))  # fmt: skip
    assert chat.messages[0]["content"] == [{"type": "text", "text": "a"}]


def test_cloudflare_generations_refuse_what_they_do_not_send() -> None:
    with pytest.raises(GatewayError) as agents:
        check_generation("agents", {"tools": [{"type": "function", "function": {"name": "f"}}]})
    assert agents.value.param == "tools" and "agents WebSocket" in agents.value.message
    with pytest.raises(GatewayError):
        check_generation("data-stream", {"temperature": 0.3})
    check_generation("agents", {"temperature": 0.3, "tools": [], "tool_choice": "auto", "top_p": 1})
    check_generation("data-stream", {"max_tokens": 5, "tools": [{"type": "function"}]})
    check_generation(None, {"tools": [{"type": "function"}]})  # unknown: the client library decides


def test_only_a_parameter_some_generation_refuses_needs_the_session_s_generation() -> None:
    for params in ({}, {"user": "u"}, {"tools": []}, {"top_p": 1}, {"tool_choice": "auto", "parallel_tool_calls": True}):
        assert not _questionable(params), params
    for params in ({"temperature": 0.3}, {"max_tokens": 5}, {"tools": [{"type": "function"}]}, {"top_p": 0.5}):
        assert _questionable(params), params


async def test_a_cloudflare_chat_without_such_parameters_does_not_read_the_session_first(client_env, monkeypatch) -> None:
    from harvestkit.gateway import upstream

    looked: list[str] = []
    generation = upstream._generation

    async def counted(route, options):
        looked.append(route.provider)
        return await generation(route, options)

    monkeypatch.setattr(upstream, "_generation", counted)
    async with serve(port=0) as url, openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0) as client:
        await client.chat.completions.create(model="qwq-32b", messages=HI, user="u")
        assert looked == []
        await client.chat.completions.create(model="qwq-32b", messages=HI, temperature=0.3)  # agents honours it
        assert looked == ["cloudflare"]


async def test_tools_to_the_cloudflare_agents_generation_are_a_400(client_env) -> None:
    async with serve(port=0) as url, openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0) as client:
        await client.chat.completions.create(model="qwq-32b", messages=HI)  # learns the generation: agents
        before = len(client_env.sandbox.requests("playground.ai.cloudflare.com"))
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(
                model="qwq-32b", messages=HI, tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}]
            )
        with pytest.raises(openai.BadRequestError) as responses:
            await client.responses.create(model="qwq-32b", input="hi", max_output_tokens=5)
    assert caught.value.param == "tools" and caught.value.code == "unsupported_parameter"
    assert responses.value.param == "max_tokens"
    assert len(client_env.sandbox.requests("playground.ai.cloudflare.com")) == before  # nothing went upstream


async def test_nan_never_goes_upstream(client_env) -> None:
    body = b'{"model": "cerebras/gemma-4-31b", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}'
    async with serve(port=0) as url, aiohttp.ClientSession() as http:  # the SDKs refuse NaN themselves; raw clients may not
        async with http.post(url + "/v1/chat/completions", data=body, headers={"Content-Type": "application/json"}) as response:
            error = (await response.json())["error"]
    assert response.status == 400 and error["code"] == "invalid_number" and "NaN" in error["message"]
    assert not client_env.chats()


def test_the_client_librarys_bad_request_is_a_400() -> None:
    mapped = from_client_error(BadRequest("tools are not supported by the agents generation", param="tools"))
    assert (mapped.status, mapped.type, mapped.param) == (400, "invalid_request_error", "tools")


# -- named keys -------------------------------------------------------------------------------
def test_keys_from_the_variable_and_a_file(tmp_path) -> None:
    assert parse_keys_variable("ci:ci-key-12345678, laptop:lap-key-12345678") == {"ci": "ci-key-12345678", "laptop": "lap-key-12345678"}
    path = tmp_path / "keys"
    path.write_text("# name key\nci ci-key-12345678\nlaptop:lap-key-12345678\n\n")
    os.chmod(path, 0o600)
    assert parse_keys_file(path) == {"ci": "ci-key-12345678", "laptop": "lap-key-12345678"}
    os.chmod(path, 0o644)
    with pytest.raises(KeyConfigError) as loose:
        parse_keys_file(path)
    assert f"chmod 600 {path}" in str(loose.value) and stat.S_IMODE(path.stat().st_mode) == 0o644  # never repaired
    for bad in ("nocolon", "bad name:key-12345678", "short:abc"):
        with pytest.raises(KeyConfigError) as caught:
            parse_keys_variable(bad)
        assert "12345678" not in str(caught.value) and "abc" not in str(caught.value).split("(")[-1]


def test_keys_match_by_name() -> None:
    keys = Keys({"a": "key-a-12345678", "b": "key-b-12345678"})
    assert keys.match("key-b-12345678") == "b" and keys.match("key-c-12345678") is None and keys.names == ["a", "b"]
    assert not Keys()
