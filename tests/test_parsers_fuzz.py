"""Fuzzing every parser: arbitrary bytes and structured-but-wrong JSON, in arbitrary splits.

Whatever comes in, only HarvestkitError subclasses may escape, and events are of the
documented types.
"""

from __future__ import annotations

import json

from harvestkit.cache.errors import HarvestkitError
from harvestkit.client.events import FinishReason, Reasoning, ToolCalls, Usage
from harvestkit.client.parsers.agents import AgentChatParser, parse_rpc_reply
from harvestkit.client.parsers.datastream import DataStreamParser
from harvestkit.client.parsers.models import cerebras_models, cloudflare_models
from harvestkit.client.parsers.openai import OpenAIStreamParser, parse_completion
from harvestkit.client.parsers.uistream import UIStreamParser
from harvestkit.client.parsers.workers import WorkersParser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

STREAM_PARSERS = [OpenAIStreamParser, DataStreamParser, UIStreamParser, WorkersParser]
EVENT_TYPES = (str, Reasoning, ToolCalls, Usage, FinishReason)
KEYS = [
    "choices",
    "delta",
    "message",
    "content",
    "reasoning",
    "reasoning_content",
    "tool_calls",
    "index",
    "id",
    "function",
    "name",
    "arguments",
    "finish_reason",
    "finishReason",
    "usage",
    "time_info",
    "prompt_tokens",
    "completion_tokens",
    "promptTokens",
    "completionTokens",
    "inputTokens",
    "error",
    "errors",
    "success",
    "status_code",
    "code",
    "type",
    "errorText",
    "toolCallId",
    "toolName",
    "args",
    "input",
    "messageMetadata",
    "response",
    "models",
    "data",
    "task",
    "result",
    "body",
    "done",
]
TYPES = [
    "text-delta",
    "reasoning-delta",
    "tool-input-available",
    "finish",
    "error",
    "message-metadata",
    "cf_agent_use_chat_response",
    "rpc",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=6)
    | st.sampled_from(TYPES + ["req_1", "r1", "[DONE]", "Text Generation"])
)
json_values = st.recursive(
    scalars,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(KEYS), c, max_size=5),
    max_leaves=20,
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(parser, body: bytes, cuts: list[int]) -> None:
    prev, events = 0, []
    try:
        for cut in [*sorted(c for c in cuts if c <= len(body)), len(body)]:
            events += parser.feed(body[prev:cut])
            prev = cut
        events += parser.close()
    except HarvestkitError:
        pass
    assert all(isinstance(e, EVENT_TYPES) for e in events)


@FUZZ
@given(
    st.sampled_from(STREAM_PARSERS),
    st.binary(max_size=400),
    st.lists(st.integers(0, 400), max_size=6),
)
def test_arbitrary_bytes(cls, body: bytes, cuts: list[int]) -> None:
    run(cls(max_line=128), body, cuts)


@FUZZ
@given(
    st.sampled_from([OpenAIStreamParser, UIStreamParser, WorkersParser]),
    st.lists(json_values | st.just("[DONE]"), max_size=6),
    st.lists(st.integers(0, 600), max_size=4),
)
def test_wrong_json_in_sse(cls, values: list, cuts: list[int]) -> None:
    body = b"".join(
        b"data: "
        + (v if isinstance(v, str) and v == "[DONE]" else json.dumps(v)).encode()
        + b"\n\n"
        for v in values
    )
    run(cls(), body, cuts)


@FUZZ
@given(
    st.lists(st.tuples(st.sampled_from(list("0g39edf28abchijkz")), json_values), max_size=8),
    st.lists(st.integers(0, 600), max_size=4),
)
def test_wrong_json_in_data_stream(lines: list, cuts: list[int]) -> None:
    body = "".join(f"{code}:{json.dumps(value)}\n" for code, value in lines).encode()
    run(DataStreamParser(), body, cuts)


@FUZZ
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=60),
            json_values.map(json.dumps),
            st.tuples(json_values, st.booleans(), json_values).map(
                lambda t: json.dumps(
                    {
                        "type": "cf_agent_use_chat_response",
                        "id": "req_1",
                        "body": json.dumps(t[0]),
                        "done": t[1],
                        "error": t[2],
                    }
                )
            ),
            st.dictionaries(st.sampled_from(KEYS), json_values, max_size=4).map(
                lambda d: json.dumps(
                    {
                        "type": "cf_agent_use_chat_response",
                        "id": "req_1",
                        "body": json.dumps({**d, "type": "finish"}),
                    }
                )
            ),
        ),
        max_size=8,
    )
)
def test_agent_frames(frames: list) -> None:
    parser, events = AgentChatParser("req_1"), []
    try:
        for frame in frames:
            events += parser.feed(frame)
            parse_rpc_reply(frame, "r1")
        events += parser.close()
    except HarvestkitError:
        pass
    assert all(isinstance(e, EVENT_TYPES) for e in events)


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode()), json_values
    )
)
def test_bodies(body) -> None:
    for parse in (parse_completion, cerebras_models, cloudflare_models):
        try:
            result = parse(body)
        except HarvestkitError:
            continue
        assert isinstance(result, list)


def test_deeply_nested_json_is_a_harvestkit_error() -> None:
    deep = "[" * 100_000
    streams = [
        (OpenAIStreamParser(), f"data: {deep}\n\n"),
        (UIStreamParser(), f"data: {deep}\n\n"),
        (WorkersParser(), f"data: {deep}\n\n"),
        (DataStreamParser(), f"0:{deep}\n"),
        (
            AgentChatParser("req_1"),
            json.dumps({"type": "cf_agent_use_chat_response", "id": "req_1", "body": deep}),
        ),
    ]
    for parser, body in streams:
        run(parser, body.encode(), [])
    nested = (
        '{"choices":[{"delta":{"tool_calls":[{"function":{"name":"f","arguments":%s}}]},'
        '"finish_reason":"stop"}]}' % ("[" * 990 + "]" * 990)
    )
    run(OpenAIStreamParser(), f"data: {nested}\n\n".encode(), [])
    for parse in (parse_completion, cerebras_models, cloudflare_models):
        try:
            parse(deep)
        except HarvestkitError:
            pass
