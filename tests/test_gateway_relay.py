"""The gateway's stream relay: what arrives while a write is recent waits for the interval and
goes out as one write; a lone event, the end and a failure go out at once; nothing is lost; a
client that leaves stops the provider stream. Both APIs (chat completions, Responses)."""

from __future__ import annotations

import asyncio
import json

import pytest
from harvestkit.client import ChatStream, Usage
from harvestkit.client.errors import RateLimited
from harvestkit.gateway.openai_format import ChunkBuilder
from harvestkit.gateway.relay import relay
from harvestkit.gateway.responses_format import ResponseBuilder
from harvestkit.gateway.responses_request import ResponsesRequest

LONG = 3600.0  # an interval no test waits out: whatever is sent at once is sent before it


class Response:
    """What the relay needs of an aiohttp response: the writes it got, each announced."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.writes: list[bytes] = []
        self.fail_after = fail_after
        self.wrote = asyncio.Event()

    async def write(self, data: bytes) -> None:
        if self.fail_after is not None and len(self.writes) >= self.fail_after:
            raise ConnectionResetError("the client left")
        self.writes.append(data)
        self.wrote.set()
        await asyncio.sleep(0)

    async def next_write(self) -> None:
        self.wrote.clear()
        await asyncio.wait_for(self.wrote.wait(), 10)


class Upstream:
    """A provider stream the test feeds batch by batch, then ends or fails."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[list[object] | BaseException | None] = asyncio.Queue()
        self.closed = asyncio.Event()
        self.stream = ChatStream(self._batches(), provider="cerebras", model="m")

    async def _batches(self):
        try:
            while (item := await self.queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.closed.set()

    def send(self, *batches: list[object]) -> None:
        for batch in batches:
            self.queue.put_nowait(batch)

    def end(self, error: BaseException | None = None) -> None:
        self.queue.put_nowait(error)


def chat(response: Response, upstream: Upstream, interval: float, builder: ChunkBuilder | None = None):
    builder = builder or ChunkBuilder("cerebras/m")
    return asyncio.create_task(relay(response, upstream.stream, builder.encode_batch, interval=interval,
                                     model=builder.model, sent_as="an SSE error event"))  # fmt: skip


def deltas(response: Response) -> list[str]:
    data = b"".join(response.writes)
    return [json.loads(event[6:])["choices"][0]["delta"]["content"] for event in data.split(b"\n\n") if event]


async def test_what_arrives_soon_after_a_write_waits_and_goes_out_as_one_write_at_the_end() -> None:
    response, upstream = Response(), Upstream()
    task = chat(response, upstream, LONG)
    upstream.send(["a", "b"])
    await response.next_write()  # the first write does not wait: nothing was written before it
    assert deltas(response) == ["ab"]
    upstream.send(["c"], ["d", "e"], ["f"])
    for _ in range(20):  # many loop turns: nothing goes out within the interval
        await asyncio.sleep(0)
    assert len(response.writes) == 1
    upstream.end()  # the end is sent at once, the interval not waited out
    assert await asyncio.wait_for(task, 10) is None
    assert deltas(response) == ["ab", "cdef"]


async def test_without_an_interval_each_read_is_written_before_the_next_arrives() -> None:
    response, upstream = Response(), Upstream()
    task = chat(response, upstream, 0)
    for i in range(5):
        upstream.send([f"w{i}-{j}" for j in range(50)])
        await response.next_write()
        assert deltas(response)[-1] == "".join(f"w{i}-{j}" for j in range(50))  # one delta per read
    upstream.end()
    assert await asyncio.wait_for(task, 10) is None
    assert len(response.writes) == 5


async def test_a_failure_within_the_interval_is_returned_at_once_after_the_held_text() -> None:
    response, upstream = Response(), Upstream()
    task = chat(response, upstream, LONG)
    upstream.send(["a"])
    await response.next_write()
    upstream.send(["b"], ["c"])
    upstream.end(RateLimited("slow down", provider="cerebras"))
    failure = await asyncio.wait_for(task, 10)
    assert failure is not None and failure.status == 429
    assert deltas(response) == ["a", "bc"]


async def test_a_client_that_leaves_stops_the_provider_stream() -> None:
    response, upstream = Response(fail_after=1), Upstream()
    task = chat(response, upstream, 0)
    upstream.send(["a"])
    await response.next_write()
    upstream.send(["b"])
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(task, 10)
    await upstream.stream.aclose()
    assert upstream.closed.is_set()


async def test_a_handler_cancelled_while_it_waits_out_the_interval_stops_the_reader() -> None:
    response, upstream = Response(), Upstream()
    task = chat(response, upstream, LONG)
    upstream.send(["a"])
    await response.next_write()
    upstream.send(["b"])  # held: the writer waits out the interval
    for _ in range(10):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await upstream.stream.aclose()
    assert upstream.closed.is_set() and len(response.writes) == 1


def responses_builder() -> ResponseBuilder:
    return ResponseBuilder("cerebras/m", ResponsesRequest("m", [{"role": "user", "content": "x"}]))


def sent_events(response: Response) -> list[dict[str, object]]:
    data = b"".join(response.writes)
    return [json.loads(line[6:]) for line in data.split(b"\n") if line.startswith(b"data: ")]


def responses(response: Response, upstream: Upstream, builder: ResponseBuilder, interval: float):
    return asyncio.create_task(relay(response, upstream.stream, builder.encode_batch, interval=interval,
                                     model=builder.model, sent_as="response.failed"))  # fmt: skip


async def test_responses_hold_what_arrives_within_the_interval_and_keep_every_token() -> None:
    builder, response, upstream = responses_builder(), Response(), Upstream()
    task = responses(response, upstream, builder, LONG)
    bursts = [[f"w{i}-{j}" for j in range(50)] + [Usage(1, 2, 3)] for i in range(3)]
    upstream.send(bursts[0])
    await response.next_write()
    upstream.send(*bursts[1:])
    upstream.end()
    assert await asyncio.wait_for(task, 10) is None
    assert len(response.writes) == 2
    texts = [e["delta"] for e in sent_events(response) if e["type"] == "response.output_text.delta"]
    assert len(texts) == 2 and "".join(texts) == "".join(e for b in bursts for e in b if isinstance(e, str))
    builder.finish()
    assert builder.response()["output"][0]["content"][0]["text"] == "".join(texts)
    assert builder.response()["usage"]["output_tokens"] == 2


async def test_responses_return_an_upstream_error_and_propagate_a_failed_write() -> None:
    builder, response, upstream = responses_builder(), Response(), Upstream()
    task = responses(response, upstream, builder, 0)
    upstream.send(["a", "b"])
    upstream.end(RateLimited("slow down", provider="cerebras"))
    failure = await asyncio.wait_for(task, 10)
    assert failure is not None and failure.status == 429
    assert [e["delta"] for e in sent_events(response) if e["type"] == "response.output_text.delta"] == ["ab"]
    upstream = Upstream()
    task = responses(Response(fail_after=0), upstream, responses_builder(), 0)
    upstream.send(["a"])
    with pytest.raises(ConnectionResetError):  # the client left: not an upstream failure
        await asyncio.wait_for(task, 10)
