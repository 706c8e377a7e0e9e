"""The gateway's pre-encoded SSE chunks: one delta per run of text, nothing lost (the write loop that
sends them is tested in test_gateway_relay.py)."""

from __future__ import annotations

import json

from harvestkit.client import FinishReason, Reasoning, ToolCalls, Usage
from harvestkit.gateway.openai_format import ChunkBuilder, merged, sse
from hypothesis import given, settings
from hypothesis import strategies as st

CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


@settings(max_examples=300, deadline=None)
@given(st.text(), st.booleans())
def test_encoded_events_are_the_chunks_as_sse(text: str, include_usage: bool) -> None:
    """Any text (quotes, backslashes, control characters, non-ASCII) gives exactly the bytes of
    ``sse(chunk)`` for the chunks ``event`` builds."""
    builder = ChunkBuilder("cerebras/m", include_usage=include_usage)
    for event in (text, Reasoning(text)):
        expected = b"".join(sse(chunk) for chunk in builder.event(event))
        assert builder.encode(event) == expected
        if expected:
            assert json.loads(expected[6:]) == builder.event(event)[0]


def test_other_events_and_state() -> None:
    builder, twin = ChunkBuilder("m", id="chatcmpl-1"), ChunkBuilder("m", id="chatcmpl-1")
    twin.created = builder.created
    assert builder.encode(ToolCalls([CALL])) == b"".join(sse(c) for c in twin.event(ToolCalls([CALL])))
    assert builder.tool_calls == 1
    assert builder.encode(Usage(1, 2, 3)) == b"" and builder.usage == Usage(1, 2, 3)
    assert builder.encode(FinishReason("length")) == b"" and builder.finish_reason == "length"
    assert builder.encode("") == b""


def deltas(data: bytes) -> list[dict[str, object]]:
    """The deltas of the SSE chunks in ``data``."""
    return [json.loads(event[6:])["choices"][0]["delta"] for event in data.split(b"\n\n") if event]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(), st.builds(Reasoning, st.text()), st.just(ToolCalls([CALL])), st.just(Usage(1, 2, 3)))))
def test_a_batch_is_one_delta_per_run_of_text_and_keeps_everything(events: list[object]) -> None:
    """A batch's text and reasoning arrive whole and in order, each run of one kind as one
    delta; tool calls and usage are what ``encode`` gives one by one."""
    builder, twin = ChunkBuilder("m", id="chatcmpl-1"), ChunkBuilder("m", id="chatcmpl-1")
    twin.created = builder.created
    got = deltas(builder.encode_batch(events))
    expected = deltas(b"".join(twin.encode(event) for event in merged(events)))
    assert got == expected and builder.tool_calls == twin.tool_calls and builder.usage == twin.usage
    assert "".join(d.get("content", "") for d in got) == "".join(e for e in events if isinstance(e, str))
    assert "".join(d.get("reasoning", "") for d in got) == "".join(e.text for e in events if isinstance(e, Reasoning))
    kinds = [next(iter(d)) for d in got]
    assert all(a != b or a == "tool_calls" for a, b in zip(kinds, kinds[1:]))  # no two text deltas in a row
    texts = [event for event in events if isinstance(event, str)]
    assert builder.encode_batch(texts) == builder.encode("".join(texts))


def reference_merged(events: list[object]) -> list[object]:
    """What ``merged`` means, event by event: the silent events at the end, empty text dropped,
    then each run of one kind joined."""
    silent = [event for event in events if isinstance(event, (Usage, FinishReason))]
    loud = [e for e in events if not isinstance(e, (Usage, FinishReason)) and e != "" and e != Reasoning("")]
    out: list[object] = []
    for event in loud:
        if out and type(event) is type(out[-1]) is str:
            out[-1] += event
        elif out and type(event) is type(out[-1]) is Reasoning:
            out[-1] = Reasoning(out[-1].text + event.text)
        else:
            out.append(event)
    return out + silent


EVENTS = st.one_of(st.sampled_from(["", "a", "bc"]), st.text(max_size=3), st.builds(Reasoning, st.sampled_from(["", "x", "yz"])),
                   st.just(ToolCalls([CALL])), st.just(Usage(1, 2, 3)), st.just(FinishReason("stop")))  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(EVENTS, max_size=30))
def test_merged_is_the_event_by_event_join(events: list[object]) -> None:
    assert merged(events) == reference_merged(events)


def test_merged_keeps_the_order_of_runs() -> None:
    events = ["a", "b", Reasoning("x"), Reasoning("y"), "c", ToolCalls([CALL]), Usage(1, 2, 3), "d", FinishReason("stop")]
    assert merged(events) == ["ab", Reasoning("xy"), "c", ToolCalls([CALL]), "d", Usage(1, 2, 3), FinishReason("stop")]
    assert merged(["a", Usage(1, 2, 3), "b"]) == ["ab", Usage(1, 2, 3)]  # usage goes in the last chunk anyway
