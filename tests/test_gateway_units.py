"""The gateway's pure parts, without a network: response shapes, request checks, routing, errors."""

from __future__ import annotations

import json
from typing import ClassVar

import pytest
from harvestkit.client import (
    AuthExpired,
    BadRequest,
    ChallengeError,
    ChatResult,
    ConnectError,
    FinishReason,
    MissingCredentials,
    ModelNotFound,
    ProtocolError,
    RateLimited,
    Reasoning,
    ServerError,
    StreamBroken,
    StreamTimeout,
    Timeout,
    ToolCalls,
    Usage,
)
from harvestkit.gateway import GatewayError, InsecureBind, check_bind, is_loopback
from harvestkit.gateway.chat_request import parse_chat_request
from harvestkit.gateway.errors import from_client_error
from harvestkit.gateway.openai_format import DONE, ChunkBuilder, completion, sse
from harvestkit.gateway.routing import Catalog, ModelTable

CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


def deltas(chunks: list[dict]) -> list[dict]:
    return [c["choices"][0]["delta"] for c in chunks if c["choices"]]


# -- response shapes --------------------------------------------------------------------------
def test_chunks_follow_openai_order_and_shape() -> None:
    builder = ChunkBuilder("cerebras/m", include_usage=True)
    chunks = [builder.role()]
    for event in [Reasoning("think"), "", "Hel", "lo", ToolCalls([CALL]), ToolCalls([CALL]), Usage(3, 4, 7), FinishReason("tool_calls")]:
        chunks += builder.event(event)
    chunks += builder.finish()
    assert deltas(chunks)[:4] == [{"role": "assistant", "content": ""}, {"reasoning": "think"}, {"content": "Hel"}, {"content": "lo"}]
    assert [d["tool_calls"][0]["index"] for d in deltas(chunks) if "tool_calls" in d] == [0, 1]
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == builder.id for c in chunks)
    assert all(c["usage"] is None for c in chunks[:-1])


def test_finish_without_reason_or_usage() -> None:
    builder = ChunkBuilder("m", include_usage=True)
    builder.event(ToolCalls([CALL]))
    (last,) = builder.finish()  # no usage known: no usage chunk
    assert last["choices"][0]["finish_reason"] == "tool_calls"
    plain = ChunkBuilder("m")
    assert plain.finish()[0]["choices"][0]["finish_reason"] == "stop" and "usage" not in plain.role()


def test_sse_framing() -> None:
    assert sse({"a": "é"}) == 'data: {"a":"é"}\n\n'.encode()
    assert DONE == b"data: [DONE]\n\n"


def test_whole_completion() -> None:
    result = ChatResult("Hi", "cerebras", "m", reasoning="hmm", usage=Usage(1, 2, 3), finish_reason="length")
    body = completion(result, "cerebras/m")
    choice = body["choices"][0]
    assert body["object"] == "chat.completion" and body["model"] == "cerebras/m"
    assert choice["message"] == {"role": "assistant", "content": "Hi", "reasoning": "hmm"}
    assert choice["finish_reason"] == "length" and body["usage"]["total_tokens"] == 3
    tools = completion(ChatResult("", "cerebras", "m", tool_calls=[CALL]), "m")
    assert tools["choices"][0]["message"] == {"role": "assistant", "content": None, "tool_calls": [CALL]}
    assert tools["choices"][0]["finish_reason"] == "tool_calls" and "usage" not in tools
    assert completion(ChatResult("", "x", "m"), "m")["choices"][0]["message"]["content"] == ""


# -- request checks -----------------------------------------------------------------------------
def body(**fields) -> bytes:
    return json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}).encode()


def test_request_fields_become_provider_keywords() -> None:
    chat = parse_chat_request(body(
        messages=[{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi"}],
        stream=True, stream_options={"include_usage": True}, temperature=0, top_p=1, seed=3, stop=["x"],
        max_tokens=5, max_completion_tokens=9, tools=[], tool_choice="none", frequency_penalty=0, logprobs=False, n=1,
        api_base="https://evil.example", profile="other", max_retries=9, allow_harvest=True,
    ))  # fmt: skip
    assert chat.stream and chat.include_usage and chat.messages[0]["role"] == "system"
    assert chat.params == {"temperature": 0, "top_p": 1, "seed": 3, "stop": ["x"], "tools": [], "tool_choice": "none", "max_tokens": 9}
    assert not parse_chat_request(body(stream_options={"include_usage": True})).include_usage  # only when streamed


@pytest.mark.parametrize(
    ("raw", "code", "param"),
    [
        (b"{nope", "invalid_json", None),
        (b"[1]", "invalid_json", None),
        (json.dumps({"messages": [{"role": "user"}]}).encode(), "missing_field", "model"),
        (json.dumps({"model": "m"}).encode(), "missing_field", "messages"),
        (body(model=3), "invalid_type", "model"),
        (body(messages=[]), "invalid_type", "messages"),
        (body(messages=[{"role": "robot"}]), "invalid_value", "messages[0].role"),
        (body(messages=[{"role": "user", "content": 5}]), "invalid_type", "messages[0].content"),
        (body(temperature=True), "invalid_type", "temperature"),
        (body(temperature="hot"), "invalid_type", "temperature"),
        (body(stop=[1]), "invalid_type", "stop"),
        (body(max_tokens=0), "invalid_value", "max_tokens"),
        (body(max_completion_tokens=1.5), "invalid_type", "max_completion_tokens"),
        (body(n=2), "unsupported_parameter", "n"),
        (body(stream="yes"), "invalid_type", "stream"),
    ],
)
def test_bad_requests_say_what_is_wrong(raw: bytes, code: str, param: str | None) -> None:
    with pytest.raises(GatewayError) as caught:
        parse_chat_request(raw)
    error = caught.value
    assert (error.status, error.code, error.param) == (400, code, param)
    assert set(error.body()["error"]) == {"message", "type", "code", "param"}


# -- routing ----------------------------------------------------------------------------------
TABLE = ModelTable({
    "cerebras": (["gemma-4-31b", "gpt-oss-120b"], {"gpt-oss": "gpt-oss-120b", "retired": "gone"}),
    "cloudflare": (["@cf/openai/gpt-oss-120b"], {"gpt-oss-120b": "@cf/openai/gpt-oss-120b"}),
})  # fmt: skip


def test_bare_ids_route_only_when_one_provider_offers_them() -> None:
    assert TABLE.provider_of("gpt-oss") == "cerebras" and TABLE.provider_of("@cf/openai/gpt-oss-120b") == "cloudflare"
    with pytest.raises(GatewayError, match="'cerebras/gpt-oss-120b' or 'cloudflare/gpt-oss-120b'") as ambiguous:
        TABLE.provider_of("gpt-oss-120b")
    assert ambiguous.value.status == 404
    for unknown in ("retired", "nope"):  # an alias of a model the list lacks does not count
        with pytest.raises(GatewayError, match="does not exist"):
            TABLE.provider_of(unknown)
    ids = [m["id"] for m in TABLE.listing()]
    assert ids == ["cerebras/gemma-4-31b", "cerebras/gpt-oss-120b", "cloudflare/@cf/openai/gpt-oss-120b",
                   "gemma-4-31b", "gpt-oss", "@cf/openai/gpt-oss-120b"]  # fmt: skip


class FakeProvider:
    model_aliases: ClassVar[dict[str, str]] = {"alias": "one"}
    fetches = 0

    @classmethod
    async def get_models_async(cls, **options) -> list[str]:
        cls.fetches += 1
        assert options == {"max_retries": 0, "models_ttl": 0}  # a refresh bypasses the client's model cache
        return ["one", "two"]


async def test_catalog_routes_prefixes_without_fetching_and_keeps_the_lists() -> None:
    catalog = Catalog({"fake": FakeProvider}, {"max_retries": 0}, ttl=60)
    route = await catalog.route("fake/anything/with/slashes")
    assert (route.provider, route.cls, route.model) == ("fake", FakeProvider, "anything/with/slashes")
    assert FakeProvider.fetches == 0
    with pytest.raises(GatewayError):
        await catalog.route("fake/")
    assert (await catalog.route("alias")).model == "alias"
    await catalog.route("two")
    assert FakeProvider.fetches == 1


# -- error mapping ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        (RateLimited("slow down", retry_after=0.25, status_code=429), 429, "rate_limit_error"),
        (ModelNotFound("no such model", status_code=404), 404, "invalid_request_error"),
        (BadRequest("bad temperature", status_code=422, param="temperature"), 400, "invalid_request_error"),
        (BadRequest("gone", status_code=404), 502, "upstream_error"),
        (MissingCredentials("no session", provider="cerebras"), 503, "upstream_auth_error"),
        (AuthExpired("expired", status_code=401), 503, "upstream_auth_error"),
        (ChallengeError("challenge", status_code=403), 503, "upstream_auth_error"),
        (ConnectError("refused"), 503, "upstream_unavailable"),
        (ServerError("down", status_code=503, headers={"retry-after": "3"}), 503, "upstream_unavailable"),
        (ServerError("boom", status_code=500), 502, "upstream_error"),
        (Timeout("slow"), 504, "timeout_error"),
        (StreamTimeout("silent"), 504, "timeout_error"),
        (StreamBroken("cut"), 502, "upstream_error"),
        (ProtocolError("garbage"), 502, "upstream_error"),
    ],
)
def test_client_errors_map_to_statuses(error, status: int, kind: str) -> None:
    mapped = from_client_error(error)
    assert (mapped.status, mapped.type) == (status, kind)
    assert error.message in mapped.message


def test_retry_hints_are_passed_on() -> None:
    assert from_client_error(RateLimited("x", retry_after=0.25)).headers == {"retry-after": "1", "retry-after-ms": "250"}
    assert from_client_error(ServerError("x", status_code=503, headers={"retry-after": "3"})).headers == {"retry-after": "3"}
    assert from_client_error(AuthExpired("x")).headers == {"x-should-retry": "false"}


# -- binding ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.8.0.1", True), ("::1", True), ("[::1]", True),
                                                 ("localhost", True), ("0.0.0.0", False), ("::", False),
                                                 ("192.168.1.2", False), ("myhost", False)])  # fmt: skip
def test_only_loopback_may_listen_without_a_key(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    check_bind(host, "a-key")
    if loopback:
        check_bind(host, None)
    else:
        with pytest.raises(InsecureBind, match="HARVESTKIT_GATEWAY_KEY"):
            check_bind(host, None)
