"""AI SDK UI message stream (Cloudflare playground, late 2025)."""

from __future__ import annotations

import json

import pytest
from harvestkit.client.errors import ProtocolError, RateLimited, StreamBroken
from harvestkit.client.events import FinishReason, Reasoning, ToolCalls, Usage
from harvestkit.client.parsers.uistream import UIStreamParser
from parser_helpers import assert_split_invariant, parse_in_pieces


def parse(data: bytes, cuts: list[int] = ()) -> list:
    return parse_in_pieces(UIStreamParser, data, cuts)


def every_split(data: bytes) -> list:
    return assert_split_invariant(UIStreamParser, data)


def sse(*chunks: dict | str, eol: str = "\n") -> bytes:
    return "".join(
        f"data: {c if isinstance(c, str) else json.dumps(c)}{eol}{eol}" for c in chunks
    ).encode()


SPEC_EXAMPLE = sse(
    {"type": "start"},
    {"type": "start-step"},
    {"type": "text-start", "id": "t1"},
    {"type": "text-delta", "id": "t1", "delta": "Hel"},
    {"type": "text-delta", "id": "t1", "delta": "lo"},
    {"type": "text-end", "id": "t1"},
    {"type": "finish-step"},
    {"type": "finish", "finishReason": "stop"},
    "[DONE]",
)


def test_spec_example_at_every_split() -> None:
    assert every_split(SPEC_EXAMPLE) == ["Hel", "lo", FinishReason("stop")]


def test_crlf_comments_and_repeats() -> None:
    body = b": ping\r\n\r\n" + sse(
        {"type": "text-delta", "id": "t", "delta": "the"},
        {"type": "text-delta", "id": "t", "delta": "the"},
        {"type": "text-delta", "id": "t", "delta": ""},
        {"type": "finish"},
        "[DONE]",
        eol="\r\n",
    )
    assert every_split(body) == ["the", "the"]


def test_reasoning_tools_and_unknown_types() -> None:
    body = sse(
        {"type": "start", "messageId": "m"},
        {"type": "reasoning-start", "id": "r"},
        {"type": "reasoning-delta", "id": "r", "delta": "Hmm"},
        {"type": "reasoning-end", "id": "r"},
        {"type": "tool-input-start", "toolCallId": "c1", "toolName": "search"},
        {"type": "tool-input-delta", "toolCallId": "c1", "inputTextDelta": '{"q"'},
        {
            "type": "tool-input-available",
            "toolCallId": "c1",
            "toolName": "search",
            "input": {"q": "x"},
        },
        {"type": "tool-output-available", "toolCallId": "c1", "output": {"hits": 1}},
        {"type": "source-url", "sourceId": "s", "url": "https://x"},
        {"type": "data-weather", "data": {"t": 1}},
        {"type": "something-new", "x": [1]},
        {"no": "type"},
        {"type": "text-delta", "delta": "Done", "extra": 1},
        {"type": "finish"},
        "[DONE]",
    )
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "search", "arguments": '{"q":"x"}'},
    }
    assert every_split(body) == [Reasoning("Hmm"), ToolCalls([call]), "Done"]


@pytest.mark.parametrize(
    "finish, usage",
    [
        (
            {
                "type": "finish",
                "finishReason": "stop",
                "messageMetadata": {
                    "usage": {"inputTokens": 5, "outputTokens": 7, "totalTokens": 12}
                },
            },
            Usage(5, 7, 12),
        ),
        (
            {
                "type": "finish",
                "finishReason": "stop",
                "usage": {"promptTokens": 5, "completionTokens": 7},
            },
            Usage(5, 7, 12),
        ),
        (
            {
                "type": "finish",
                "messageMetadata": {
                    "finishReason": "stop",
                    "promptTokens": 5,
                    "completionTokens": 7,
                },
            },
            Usage(5, 7, 12),
        ),
        (
            {
                "type": "finish",
                "finishReason": "stop",
                "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
            },
            Usage(5, 7, 12),
        ),
    ],
)
def test_finish_usage_shapes(finish: dict, usage: Usage) -> None:
    assert parse(sse({"type": "text-delta", "delta": "x"}, finish, "[DONE]")) == [
        "x",
        usage,
        FinishReason("stop"),
    ]


def test_usage_from_an_earlier_metadata_chunk() -> None:
    body = sse(
        {"type": "text-delta", "delta": "x"},
        {
            "type": "message-metadata",
            "messageMetadata": {"usage": {"inputTokens": 1, "outputTokens": 2}},
        },
        {"type": "finish", "finishReason": "length"},
    )
    assert parse(body) == ["x", Usage(1, 2, 3), FinishReason("length")]


def test_done_without_finish_and_finish_without_done() -> None:
    assert parse(sse({"type": "text-delta", "delta": "x"}, "[DONE]")) == ["x"]
    assert parse(
        sse({"type": "text-delta", "delta": "x"}, {"type": "finish", "finishReason": "stop"})
    ) == ["x", FinishReason("stop")]


def test_error_chunk() -> None:
    parser = UIStreamParser()
    assert parser.feed(sse({"type": "text-delta", "delta": "Hi"})) == ["Hi"]
    with pytest.raises(StreamBroken) as info:
        parser.feed(sse({"type": "error", "errorText": "Upstream model failed"}))
    assert info.value.text == "Hi" and "Upstream model failed" in str(info.value)
    with pytest.raises(RateLimited):
        UIStreamParser().feed(sse({"type": "error", "errorText": "slow", "status_code": 429}))


def test_malformed_chunks() -> None:
    for body in (b"data: {oops\n\n", b"data: [1]\n\n"):
        with pytest.raises(ProtocolError):
            UIStreamParser().feed(body)
    # text before the bad chunk in the same piece is delivered; the error comes next
    parser = UIStreamParser()
    assert parser.feed(sse({"type": "text-delta", "delta": "x"}) + b"data: 2\n\n") == ["x"]
    with pytest.raises(ProtocolError) as caught:
        parser.close()
    assert caught.value.text == "x"
    # wrong types inside known chunks are ignored or rejected, never a crash
    for chunk in (
        {"type": "finish", "messageMetadata": 3},
        {"type": "text-delta", "delta": 5},
        {"type": "tool-input-available", "toolCallId": "c", "toolName": 1, "input": None},
    ):
        try:
            UIStreamParser().feed(sse(chunk))
        except ProtocolError:
            pass


def test_truncation_detected_at_every_cut() -> None:
    full = parse(SPEC_EXAMPLE)
    finish_end = SPEC_EXAMPLE.index(b"}", SPEC_EXAMPLE.index(b'"finish"')) + 1
    for cut in range(len(SPEC_EXAMPLE)):
        parser = UIStreamParser()
        events = parser.feed(SPEC_EXAMPLE[:cut])
        if cut < finish_end:
            with pytest.raises(StreamBroken) as info:
                parser.close()
            assert "Hello".startswith(info.value.text)
        else:
            assert events + parser.close() == full
