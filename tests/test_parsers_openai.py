"""OpenAI / Cerebras chat completion streams and bodies."""

from __future__ import annotations

import json
import random

import pytest
from harvestkit.cache.errors import HarvestkitError
from harvestkit.client.errors import (
    AuthExpired,
    ProtocolError,
    RateLimited,
    ServerError,
    StreamBroken,
)
from harvestkit.client.events import FinishReason, Reasoning, ToolCalls, Usage
from harvestkit.client.parsers.openai import OpenAIStreamParser, parse_completion
from hypothesis import example, given, settings
from hypothesis import strategies as st
from parser_helpers import assert_split_invariant, parse_in_pieces

ENVELOPE = {
    "id": "chatcmpl-5c9a1e",
    "created": 1761231230,
    "model": "gemma-4-31b",
    "system_fingerprint": "fp_6381a6e5ac",
    "object": "chat.completion.chunk",
}
USAGE = {
    "prompt_tokens": 22,
    "completion_tokens": 4,
    "total_tokens": 26,
    "prompt_tokens_details": {"cached_tokens": 0},
}
TIME_INFO = {
    "queue_time": 0.0001,
    "prompt_time": 0.002,
    "completion_time": 0.0035,
    "total_time": 0.0067,
    "created": 1761231230.53,
}


def chunk(delta: dict | None = None, finish: str | None = None, **top) -> dict:
    choice = {"delta": delta or {}, "index": 0}
    if finish:
        choice["finish_reason"] = finish
    return {
        "id": ENVELOPE["id"],
        "choices": [choice],
        **{k: v for k, v in ENVELOPE.items() if k != "id"},
        **top,
    }


def sse(*chunks: dict | str, eol: str = "\n") -> bytes:
    return "".join(
        f"data: {c if isinstance(c, str) else json.dumps(c, separators=(',', ':'))}{eol}{eol}"
        for c in chunks
    ).encode()


def parse(data: bytes, cuts: list[int] = ()) -> list:
    return parse_in_pieces(OpenAIStreamParser, data, cuts)


def every_split(data: bytes) -> list:
    return assert_split_invariant(OpenAIStreamParser, data, random_samples=20)


FINAL = chunk(finish="stop", usage=USAGE, time_info=TIME_INFO)
END = [Usage(22, 4, 26, TIME_INFO), FinishReason("stop")]
CEREBRAS = sse(
    chunk({"role": "assistant"}),
    chunk({"content": "The"}),
    chunk({"content": " the"}),
    chunk({"content": " the"}),
    chunk({"content": ""}),
    chunk({"content": ' caf\u00e9 "x"\n'}),
    chunk({}),
    FINAL,
)


def test_cerebras_stream_at_every_split() -> None:
    assert every_split(CEREBRAS) == ["The", " the", " the", ' café "x"\n', *END]


def test_crlf_and_done_and_comments() -> None:
    body = b": keep-alive\r\n\r\n" + sse(
        chunk({"content": "a"}), chunk({"content": "a"}), FINAL, "[DONE]", eol="\r\n"
    )
    assert every_split(body) == ["a", "a", *END]


def test_non_ascii_unescaped_and_ascii_escaped_are_the_same() -> None:
    raw = "".join(
        f"data: {json.dumps(c, ensure_ascii=False)}\n\n"
        for c in [chunk({"content": "é€😀"}), chunk({"content": "é€😀"}), FINAL]
    ).encode()
    assert every_split(raw) == every_split(
        sse(chunk({"content": "é€😀"}), chunk({"content": "é€😀"}), FINAL)
    )


def test_reasoning_then_content() -> None:
    body = sse(
        chunk({"role": "assistant"}),
        chunk({"reasoning": "Let me"}),
        chunk({"reasoning": " think"}),
        chunk({"reasoning_content": " more"}),
        chunk({"content": "42"}),
        FINAL,
    )
    assert every_split(body) == [
        Reasoning("Let me"),
        Reasoning(" think"),
        Reasoning(" more"),
        "42",
        *END,
    ]


def test_cerebras_whole_tool_call() -> None:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
    }
    body = sse(
        chunk({"role": "assistant"}),
        chunk({"tool_calls": [{**call, "index": 0}]}),
        chunk(finish="tool_calls", usage=USAGE, time_info=TIME_INFO),
    )
    assert every_split(body) == [
        ToolCalls([call]),
        Usage(22, 4, 26, TIME_INFO),
        FinishReason("tool_calls"),
    ]


def test_openai_fragmented_tool_calls_with_usage_chunk_and_done() -> None:
    frags = [
        [
            {
                "index": 0,
                "id": "call_a",
                "type": "function",
                "function": {"name": "f", "arguments": ""},
            }
        ],
        [{"index": 0, "function": {"arguments": '{"x":'}}],
        [
            {
                "index": 1,
                "id": "call_b",
                "type": "function",
                "function": {"name": "g", "arguments": "{}"},
            }
        ],
        [{"index": 0, "function": {"arguments": "1}"}}],
    ]
    usage_chunk = {
        **ENVELOPE,
        "choices": [],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    }
    body = sse(
        *[chunk({"tool_calls": f}) for f in frags],
        chunk(finish="tool_calls"),
        usage_chunk,
        "[DONE]",
    )
    assert every_split(body) == [
        ToolCalls(
            [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "f", "arguments": '{"x":1}'},
                },
                {"id": "call_b", "type": "function", "function": {"name": "g", "arguments": "{}"}},
            ]
        ),
        Usage(5, 7, 12),
        FinishReason("tool_calls"),
    ]


def test_done_without_usage() -> None:
    assert every_split(sse(chunk({"content": "hi"}), chunk(finish="length"), "[DONE]")) == [
        "hi",
        FinishReason("length"),
    ]


def test_finish_without_usage_or_done_ends_at_close() -> None:
    assert parse(sse(chunk({"content": "hi"}), chunk(finish="stop"))) == [
        "hi",
        FinishReason("stop"),
    ]


def test_cut_after_the_finish_reason_loses_nothing() -> None:
    usage_chunk = {**ENVELOPE, "choices": [], "usage": USAGE}
    body = sse(chunk({"content": "hi"}), chunk(finish="stop"), usage_chunk, "[DONE]")
    cut = body.index(b"usage") + 3
    assert parse(body[:cut]) == ["hi", FinishReason("stop")]


def test_data_after_done_is_ignored() -> None:
    assert parse(sse(chunk({"content": "a"}), "[DONE]", chunk({"content": "b"}))) == ["a"]


def test_unknown_fields_and_choices_are_ignored() -> None:
    weird = chunk(
        {"content": "x", "audio": None, "refusal": None},
        logprobs=None,
        service_tier="auto",
        usage=None,
    )
    other_choice = {**ENVELOPE, "choices": [{"index": 1, "delta": {"content": "IGNORED"}}]}
    assert parse(sse(weird, other_choice, {"object": "ping"}, FINAL)) == ["x", *END]


@pytest.mark.parametrize(
    "error, cls",
    [
        (
            {
                "error": {
                    "message": "Tokens per minute limit exceeded",
                    "type": "too_many_requests_error",
                    "code": "token_quota_exceeded",
                },
                "status_code": 429,
            },
            RateLimited,
        ),
        ({"error": {"message": "Internal error"}, "status_code": 500}, ServerError),
        ({"error": {"message": "Wrong API Key", "code": "wrong_api_key"}}, AuthExpired),
        ({"error": {"message": "something broke"}}, StreamBroken),
    ],
)
def test_error_chunk_mid_stream(error: dict, cls: type) -> None:
    parser = OpenAIStreamParser()
    assert parser.feed(sse(chunk({"content": "Hel"}), chunk({"content": "lo"}))) == ["Hel", "lo"]
    with pytest.raises(cls) as info:
        parser.feed(sse(error))
    assert type(info.value) is cls and info.value.provider == "cerebras"
    if cls is StreamBroken:
        assert info.value.text == "Hello"


def test_truncation_detected_at_every_cut() -> None:
    full = parse(CEREBRAS)
    full_text = "".join(e for e in full if isinstance(e, str))
    final_end = CEREBRAS.rindex(b"}") + 1
    for cut in range(len(CEREBRAS)):
        parser = OpenAIStreamParser()
        events = parser.feed(CEREBRAS[:cut])
        if cut < final_end:
            with pytest.raises(StreamBroken) as info:
                parser.close()
            text = "".join(e for e in events if isinstance(e, str))
            assert info.value.text.startswith(text) and full_text.startswith(info.value.text)
        else:
            assert events + parser.close() == full


def test_truncation_message_and_partial_last_chunk() -> None:
    parser = OpenAIStreamParser()
    parser.feed(CEREBRAS[:-40])
    with pytest.raises(StreamBroken, match="cut in the middle of a chunk"):
        parser.close()
    parser = OpenAIStreamParser()
    parser.feed(sse(chunk({"content": "a"})))
    with pytest.raises(StreamBroken, match="ended before its final chunk") as info:
        parser.close()
    assert info.value.text == "a"


def test_malformed_json_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        OpenAIStreamParser().feed(b"data: {not json}\n\n")
    with pytest.raises(ProtocolError):
        OpenAIStreamParser().feed(b"data: [1, 2]\n\n")
    with pytest.raises(ProtocolError):
        OpenAIStreamParser().feed(sse({"choices": [{"delta": "oops"}]}))


def test_a_changed_envelope_and_chunks_after_the_end() -> None:
    body = sse(
        chunk({"content": "a"}),
        chunk({"content": "b"}),
        {**chunk({"content": "e"}), "created": 2},
        chunk({"content": "c"}, finish="stop"),
        chunk({"content": "d"}, usage=USAGE),
        chunk({"content": "after the end"}),
    )
    parser = OpenAIStreamParser()
    assert parser.feed(body) == ["a", "b", "e", "c", "d", Usage(22, 4, 26), FinishReason("stop")]
    assert parser.close() == []


TRICKY = [
    "a",
    'b"',
    "c\\",
    '\\"',
    '"}',
    "\u00e9",
    "\n",
    "",
    "\\n",
    '"},"index":0}],"x":"',
    "\u2028",
]


@pytest.mark.parametrize("ascii_only", [True, False])
def test_tricky_text(ascii_only: bool) -> None:
    chunks = [chunk({"content": t}) for t in ["warm", "up", *TRICKY, *TRICKY]] + [FINAL]
    body = "".join(f"data: {json.dumps(c, ensure_ascii=ascii_only)}\n\n" for c in chunks).encode()
    expected = ["warm", "up", *[t for t in TRICKY if t], *[t for t in TRICKY if t], *END]
    assert every_split(body) == expected


texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["content", "reasoning"]), texts), max_size=15),
    st.booleans(),
    st.booleans(),
    st.data(),
)
def test_events_match_a_plain_json_reading(deltas, ascii_only: bool, vary: bool, data) -> None:
    """Whatever the text (quotes, backslashes, unicode) and whether the envelope repeats, the
    events agree with a naive reading of the same chunks."""
    chunks = [
        {**chunk({key: text}), "created": i if vary else 1} for i, (key, text) in enumerate(deltas)
    ]
    chunks.append(FINAL)
    body = "".join(f"data: {json.dumps(c, ensure_ascii=ascii_only)}\n\n" for c in chunks).encode()
    expected = [text if key == "content" else Reasoning(text) for key, text in deltas if text] + END
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=5))
    assert parse(body, cuts) == expected


def varied(chunk: dict, rng: random.Random) -> dict:
    """``chunk`` the way real servers vary it: padding, token ids, logprobs, keys reordered."""
    chunk = {**chunk, "obfuscation": "".join(rng.choices("abcXYZ09", k=rng.randrange(1, 16)))}
    for choice in chunk.get("choices") or ():
        if choice["delta"].get("content"):
            choice["delta"]["tokens"] = [rng.randrange(200_000) for _ in range(rng.randrange(1, 3))]
        choice["logprobs"] = None
    items = list(chunk.items())
    rng.shuffle(items)
    return dict(items)


def test_per_chunk_varying_envelope_at_every_split() -> None:
    """Spec 4.1: padding, token ids and key order change on every chunk; optional fields are
    absent; the usage comes alone after the finish chunk, with ``choices: []``."""
    rng = random.Random(7)
    body = sse(
        varied(chunk({"role": "assistant", "content": None, "reasoning": "Think."}), rng),
        *(varied(chunk({"content": word}), rng) for word in ["One", " two", ' "3"', "\n", " caf\u00e9"]),
        {"choices": [{"delta": {"content": " four"}}]},  # no id, no index, no finish_reason
        varied(chunk({}, finish="stop"), rng),
        varied({**ENVELOPE, "choices": [], "usage": USAGE, "time_info": TIME_INFO}, rng),
    )
    expected = [Reasoning("Think."), "One", " two", ' "3"', "\n", " caf\u00e9", " four", *END]
    assert every_split(body) == expected


def test_usage_tail_without_choices_and_service_tier() -> None:
    body = sse(
        chunk({"content": "a"}, service_tier="auto"),
        chunk({}, finish="length"),
        {"id": "x", "usage": USAGE, "service_tier": "auto"},
    )
    assert every_split(body) == ["a", Usage(22, 4, 26), FinishReason("length")]


def test_json_only_the_lenient_reading_accepts() -> None:
    """Raw control characters in strings and ``NaN`` are read as ``json`` reads them."""
    body = b'data: {"choices":[{"delta":{"content":"a\tb"},"index":0,"x":NaN}]}\n\n' + sse(
        chunk({}, finish="stop")
    )
    assert parse(body) == ["a\tb", FinishReason("stop")]


def test_non_streaming_completion() -> None:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1761231230,
        "model": "gemma-4-31b",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "Hello!", "reasoning": "Greet."},
            }
        ],
        "usage": USAGE,
        "time_info": TIME_INFO,
    }
    expected = [Reasoning("Greet."), "Hello!", *END]
    assert parse_completion(json.dumps(body).encode()) == expected
    assert parse_completion(body) == expected


def test_non_streaming_tool_calls_and_errors() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    body = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {"role": "assistant", "content": None, "tool_calls": [call]},
            }
        ]
    }
    assert parse_completion(body) == [ToolCalls([call]), FinishReason("tool_calls")]
    with pytest.raises(ServerError):
        parse_completion({"error": {"message": "boom"}})
    with pytest.raises(ProtocolError, match="HTML page"):
        parse_completion(b"<html><title>Oops</title></html>")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda c: (
        st.lists(c, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
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
                    "usage",
                    "time_info",
                    "prompt_tokens",
                    "completion_tokens",
                    "error",
                    "status_code",
                    "message",
                    "code",
                ]
            ),
            c,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(st.lists(json_values, max_size=6), st.data())
def test_structured_but_wrong_json_only_raises_harvestkit_errors(values, data) -> None:
    body = b"".join(b"data: " + json.dumps(v).encode() + b"\n\n" for v in values)
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=4))
    try:
        parse(body, cuts)
    except HarvestkitError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=5))
def test_arbitrary_bytes_only_raise_harvestkit_errors(body: bytes, cuts: list[int]) -> None:
    try:
        parse(b"data: " + body, [c for c in cuts if c <= len(body)])
    except HarvestkitError:
        pass


@pytest.mark.parametrize("envelope", ["identical", "varying"])
@pytest.mark.parametrize("usage_chunk", [False, True])
@pytest.mark.parametrize("model, tools", [("gemma-4-31b", False), ("gpt-oss-120b", False), ("gemma-4-31b", True)])
def test_the_sandbox_streams_in_every_shape(envelope: str, usage_chunk: bool, model: str, tools: bool) -> None:
    """The sandbox's Cerebras streams (every envelope knob) give the reply's events."""
    from harvestkit.sandbox.cerebras_stream import Completion
    from harvestkit.sandbox.textgen import make_reply

    reply = make_reply([{"role": "user", "content": "Tell me about quartz"}], reasoning=model == "gpt-oss-120b")
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}} if tools else None
    completion = Completion(model, reply, call, envelope=envelope, usage_chunk=usage_chunk)
    body = b"".join(completion.sse())
    events = assert_split_invariant(OpenAIStreamParser, body, random_samples=30)
    usage = Usage(reply.prompt_tokens, reply.completion_tokens, reply.prompt_tokens + reply.completion_tokens)
    if tools:
        expected = [ToolCalls([call])]
    else:
        expected = [Reasoning(t) for t in reply.reasoning] + [t for t in reply.tokens if t]
    assert [e for e in events if not isinstance(e, Usage)] == [*expected, FinishReason(completion.finish_reason())]
    (got,) = [e for e in events if isinstance(e, Usage)]
    assert (got.prompt_tokens, got.completion_tokens, got.total_tokens) == (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens)


CALL = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
maybe = st.one_of(st.none(), st.just(""), texts)


def outcome(read, body: dict, then: list[dict]) -> tuple:
    """What a fresh parser gives for ``body`` (``read(parser, body)``), then for the chunks
    ``then`` and ``close()`` (the state the chunk left: usage, tool calls, the finish reason,
    an end), or the class of what it raises."""
    parser = OpenAIStreamParser()
    try:
        events = read(parser, body)
    except HarvestkitError as exc:
        return (type(exc),)
    try:
        return events, parser.feed(sse(*then)) + parser.close()
    except HarvestkitError as exc:
        return events, type(exc)


@settings(max_examples=600, deadline=None)
@given(
    st.fixed_dictionaries(
        {"content": st.one_of(texts, texts, texts, st.none(), st.integers(), st.just([{"type": "text", "text": "x"}]))},
        optional={
            "reasoning": maybe,
            "reasoning_content": maybe,
            "role": st.sampled_from(["assistant", None]),
            "tool_calls": st.one_of(st.none(), st.just([CALL])),
        },
    ),
    st.fixed_dictionaries(
        {},
        optional={"index": st.sampled_from([0, 1, None, 0.0, False]), "finish_reason": st.sampled_from([None, "stop", "length", ""])},
    ),
    st.fixed_dictionaries(
        {},
        optional={"usage": st.sampled_from([None, USAGE]), "time_info": st.just(TIME_INFO), "error": st.sampled_from([None, {"message": "boom"}])},
    ),
    st.sampled_from([1, 1, 1, 0, 2]),
)
@example({"content": "x"}, {"index": 1}, {}, 1)
@example({"content": "x"}, {"finish_reason": "stop"}, {}, 1)
@example({"content": "x"}, {}, {"usage": USAGE}, 1)
@example({"content": "x", "reasoning": "r"}, {}, {}, 1)
@example({"content": "x", "tool_calls": [CALL]}, {}, {}, 1)
@example({"content": "x"}, {}, {}, 2)
@example({"content": 5}, {}, {}, 1)
@example({"content": "x"}, {}, {"error": {"message": "boom"}}, 1)
def test_the_text_fast_path_reads_a_chunk_as_the_full_reading_does(delta, choice, top, copies) -> None:
    """Every chunk gives the events and the end of the full reading (``handle_chunk``), whatever
    it holds besides its text: the decoder's check for a text-only chunk lets nothing else through."""
    body = {**ENVELOPE, "choices": [{**choice, "delta": delta} for _ in range(copies)], **top}
    for then in ([], [chunk(finish="stop")]):
        fast = outcome(lambda parser, body: parser.feed(sse(body)), body, then)
        assert fast == outcome(OpenAIStreamParser.handle_chunk, body, then)
