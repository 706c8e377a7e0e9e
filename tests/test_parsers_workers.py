"""Workers AI SSE (the playground's oldest generation) and the model-list parsers."""

from __future__ import annotations

import json

import pytest
from harvestkit.client.errors import (
    ChallengeError,
    ProtocolError,
    RateLimited,
    StreamBroken,
)
from harvestkit.client.events import ToolCalls, Usage
from harvestkit.client.parsers.models import cerebras_models, cloudflare_models
from harvestkit.client.parsers.workers import WorkersParser
from parser_helpers import parse_in_pieces


def parse(data: bytes, cuts: list[int] = ()) -> list:
    return parse_in_pieces(WorkersParser, data, cuts)


def sse(*chunks: dict | str) -> bytes:
    return "".join(
        f"data: {c if isinstance(c, str) else json.dumps(c)}\n\n" for c in chunks
    ).encode()


USAGE = {"prompt_tokens": 147, "completion_tokens": 16, "total_tokens": 163}
SPEC_EXAMPLE = sse(
    {"response": "Hello", "p": "abcdefgh"},
    {"response": " the", "p": "ab"},
    {"response": " the", "p": "abcdef"},
    {"response": "", "p": "a"},
    {"response": "", "usage": USAGE},
    "[DONE]",
)


def test_spec_example_at_every_split() -> None:
    whole = parse(SPEC_EXAMPLE)
    assert whole == ["Hello", " the", " the", Usage(147, 16, 163)]
    for cut in range(len(SPEC_EXAMPLE) + 1):
        assert parse(SPEC_EXAMPLE, [cut]) == whole
    assert parse(SPEC_EXAMPLE, list(range(len(SPEC_EXAMPLE)))) == whole


def test_done_alone_or_usage_alone_end_the_stream() -> None:
    assert parse(sse({"response": "a"}, "[DONE]")) == ["a"]
    assert parse(sse({"response": "a"}, {"response": "", "usage": USAGE})) == [
        "a",
        Usage(147, 16, 163),
    ]


def test_truncation_detected_at_every_cut() -> None:
    usage_end = SPEC_EXAMPLE.index(b"}}", SPEC_EXAMPLE.index(b"usage")) + 2
    for cut in range(len(SPEC_EXAMPLE)):
        parser = WorkersParser()
        events = parser.feed(SPEC_EXAMPLE[:cut])
        if cut < usage_end:
            with pytest.raises(StreamBroken) as info:
                parser.close()
            assert "Hello the the".startswith(info.value.text)
        else:
            assert events + parser.close() == ["Hello", " the", " the", Usage(147, 16, 163)]


def test_errors_and_tool_calls() -> None:
    with pytest.raises(RateLimited):
        parse(
            sse(
                {
                    "errors": [{"message": "Capacity temporarily exceeded", "code": 429}],
                    "success": False,
                }
            )
        )
    with pytest.raises(StreamBroken, match="AiError"):
        parse(sse({"response": "x"}, {"error": "AiError: model failed"}))
    events = parse(
        sse({"response": "", "tool_calls": [{"name": "f", "arguments": {"a": 1}}]}, "[DONE]")
    )
    assert events == [
        ToolCalls(
            [{"id": "", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}]
        )
    ]
    with pytest.raises(ProtocolError):
        parse(sse("[1,2]"))


CF_MODELS = {
    "models": [
        {
            "id": "1",
            "source": 2,
            "name": "@cf/meta/llama-3.3-70b-instruct-fp8-fast",
            "task": {"id": "t", "name": "Text Generation", "description": "..."},
            "created_at": "2024-02-06 18:16:27.183",
            "tags": [],
            "properties": [{"property_id": "context_window", "value": "4096"}],
        },
        {"id": "2", "name": "@cf/baai/bge-base-en-v1.5", "task": {"name": "Text Embeddings"}},
        {"id": "3", "name": "@cf/qwen/qwq-32b", "task": "Text Generation"},
        {"id": "4", "name": "@cf/no/task"},
        {"id": "5", "description": "no name"},
        "junk",
    ]
}


def test_cloudflare_models() -> None:
    expected = ["@cf/meta/llama-3.3-70b-instruct-fp8-fast", "@cf/qwen/qwq-32b", "@cf/no/task"]
    assert cloudflare_models(json.dumps(CF_MODELS).encode()) == expected + ["junk"]
    assert cloudflare_models(CF_MODELS["models"][:4]) == expected  # the getModels RPC result


def test_cerebras_models() -> None:
    body = {
        "object": "list",
        "data": [
            {"id": "gemma-4-31b", "object": "model", "created": 1721692800, "owned_by": "Meta"},
            {"id": "gpt-oss-120b", "object": "model"},
            {"object": "model"},
            {"id": "gemma-4-31b"},
        ],
    }
    assert cerebras_models(json.dumps(body)) == ["gemma-4-31b", "gpt-oss-120b"]


@pytest.mark.parametrize("parse_models", [cerebras_models, cloudflare_models])
def test_model_list_errors(parse_models) -> None:
    with pytest.raises(ProtocolError, match="HTML page titled 'Login'"):
        parse_models(b"<!DOCTYPE html><html><head><title>Login</title></head></html>")
    with pytest.raises(ChallengeError):
        parse_models(b"<html><title>Just a moment...</title></html>")
    with pytest.raises(ProtocolError, match="not valid JSON"):
        parse_models(b'{"data": [')
    with pytest.raises(ProtocolError):
        parse_models(b'{"object": 3}')
