"""The gateway's pre-encoded SSE chunks and its coalescing write loops (chat completions and Responses)."""

from __future__ import annotations

import asyncio
import json

import pytest
from harvestkit.client import ChatStream, FinishReason, Reasoning, ToolCalls, Usage
from harvestkit.client.errors import RateLimited
from harvestkit.gateway import chat as gateway_chat
from harvestkit.gateway import responses as gateway_responses
from harvestkit.gateway.openai_format import ChunkBuilder, merged, sse
from harvestkit.gateway.responses_format import ResponseBuilder
from harvestkit.gateway.responses_request import ResponsesRequest
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


def test_merged_keeps_the_order_of_runs() -> None:
    events = ["a", "b", Reasoning("x"), Reasoning("y"), "c", ToolCalls([CALL]), Usage(1, 2, 3), "d", FinishReason("stop")]
    assert merged(events) == ["ab", Reasoning("xy"), "c", ToolCalls([CALL]), "d", Usage(1, 2, 3), FinishReason("stop")]
    assert merged(["a", Usage(1, 2, 3), "b"]) == ["ab", Usage(1, 2, 3)]  # usage goes in the last chunk anyway


class Response:
    """What the write loop needs of an aiohttp response: the writes it got."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.writes: list[bytes] = []
        self.fail_after = fail_after

    async def write(self, data: bytes) -> None:
        if self.fail_after is not None and len(self.writes) >= self.fail_after:
            raise ConnectionResetError("the client left")
        self.writes.append(data)
        await asyncio.sleep(0)


def stream(bursts: list[list[object]], error: Exception | None = None, gate: asyncio.Event | None = None) -> ChatStream:
    async def batches():
        for burst in bursts:
            await asyncio.sleep(0.01)  # the next network read
            yield list(burst)
        if gate is not None:
            await gate.wait()
        if error is not None:
            raise error

    return ChatStream(batches(), provider="cerebras", model="m")


async def test_a_burst_of_events_is_one_write_of_one_delta_and_nothing_is_held_back() -> None:
    builder = ChunkBuilder("m")
    response = Response()
    bursts = [[f"w{i}-{j}" for j in range(50)] for i in range(3)]
    assert await gateway_chat._relay(response, stream(bursts), builder) is None
    assert 1 <= len(response.writes) <= 3  # one write per burst at most
    got = deltas(b"".join(response.writes))
    assert len(got) == len(response.writes)  # a write is one delta of the burst's text
    assert "".join(d["content"] for d in got) == "".join(e for burst in bursts for e in burst)


async def test_a_lone_event_is_written_before_the_next_arrives() -> None:
    builder, response, gate = ChunkBuilder("m"), Response(), asyncio.Event()
    relay = asyncio.create_task(gateway_chat._relay(response, stream([["first"]], gate=gate), builder))
    for _ in range(100):
        await asyncio.sleep(0.005)
        if response.writes:
            break
    assert response.writes == [builder.encode("first")]  # while the upstream is still silent
    gate.set()
    assert await relay is None


async def test_an_upstream_error_after_events_is_returned_after_them() -> None:
    builder, response = ChunkBuilder("m"), Response()
    failure = await gateway_chat._relay(response, stream([["a", "b"]], RateLimited("slow down", provider="cerebras")), builder)
    assert failure is not None and failure.status == 429
    assert b"".join(response.writes) == builder.encode("ab")


async def test_a_failed_write_propagates_and_stops_the_reader() -> None:
    builder, response = ChunkBuilder("m"), Response(fail_after=1)
    closed = asyncio.Event()

    async def endless():
        try:
            while True:
                await asyncio.sleep(0.001)
                yield ["x"]
        finally:
            closed.set()

    events = ChatStream(endless(), provider="cerebras", model="m")
    with pytest.raises(ConnectionResetError):
        await gateway_chat._relay(response, events, builder)
    await events.aclose()
    assert closed.is_set()


def responses_builder() -> ResponseBuilder:
    return ResponseBuilder("cerebras/m", ResponsesRequest("m", [{"role": "user", "content": "x"}]))


def sent_events(response: Response) -> list[dict[str, object]]:
    data = b"".join(response.writes)
    return [json.loads(line[6:]) for line in data.split(b"\n") if line.startswith(b"data: ")]


async def test_a_responses_burst_is_one_write_with_one_text_delta() -> None:
    builder, response = responses_builder(), Response()
    bursts = [[f"w{i}-{j}" for j in range(50)] + [Usage(1, 2, 3)] for i in range(3)]
    assert await gateway_responses._relay(response, stream(bursts), builder) is None
    assert len(response.writes) == 3
    deltas = [e for e in sent_events(response) if e["type"] == "response.output_text.delta"]
    assert len(deltas) == 3 and "".join(d["delta"] for d in deltas) == "".join(e for b in bursts for e in b if isinstance(e, str))
    builder.finish()
    assert builder.response()["output"][0]["content"][0]["text"] == "".join(d["delta"] for d in deltas)
    assert builder.response()["usage"]["output_tokens"] == 2


async def test_a_responses_upstream_error_is_returned_and_a_failed_write_propagates() -> None:
    builder, response = responses_builder(), Response()
    failure = await gateway_responses._relay(response, stream([["a", "b"]], RateLimited("slow down", provider="cerebras")), builder)
    assert failure is not None and failure.status == 429
    assert [e["delta"] for e in sent_events(response) if e["type"] == "response.output_text.delta"] == ["ab"]
    with pytest.raises(ConnectionResetError):  # the client left: not an upstream failure
        await gateway_responses._relay(Response(fail_after=0), stream([["a"], ["b"]]), responses_builder())
