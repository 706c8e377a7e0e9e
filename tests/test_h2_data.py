"""The sandbox's HTTP/2 DATA path in memory: a handler's HTTP/1.1 response bytes in, frames out.

An `h2` client on the other side of an in-memory wire reads what `H2Connection` sends, so these
tests see what any HTTP/2 client would: the same bytes, frame boundaries at varied places, the
client's flow-control window respected (and the handler paused meanwhile), END_STREAM or
RST_STREAM at the end.
"""
from __future__ import annotations

import asyncio
import random
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import pytest
from harvestkit.sandbox.h2data import frame_ends
from harvestkit.sandbox.h2server import HIGH_WATER, H2Connection
from harvestkit.sandbox.state import SandboxState

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
MAX_FRAME = 16384


class Wire(asyncio.Transport):
    """The connection's TLS side: what the server writes is kept for the client to read."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = bytearray()
        self.closed = False

    def write(self, data: Any) -> None:
        self.sent += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


class Handler(asyncio.Protocol):
    """Stands in for aiohttp's request handler: counts pauses and resumes."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.paused = self.resumed = 0
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        pass

    def pause_writing(self) -> None:
        self.paused += 1

    def resume_writing(self) -> None:
        self.resumed += 1

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost = True


class Pair:
    """A sandbox H2Connection and an h2 client with one request open (stream 1)."""

    def __init__(self, *, window: int = 1 << 30, split_writes: bool = True, method: str = "GET") -> None:
        state = SandboxState()
        state.knobs.split_writes = split_writes
        self.handler = Handler()
        self.server = H2Connection(state, lambda: self.handler)
        self.wire = Wire()
        self.server.connection_made(self.wire)
        self.client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.client.initiate_connection()
        self.client.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: min(window, 2**31 - 1)})
        if window > 65535:
            self.client.increment_flow_control_window(min(window, 2**31 - 1) - 65535)
        request = [(":method", method), (":path", "/"), (":scheme", "https"), (":authority", "api.cerebras.ai")]
        self.client.send_headers(1, request, end_stream=True)
        self.frames: list[bytes] = []
        self.headers: dict[str, str] = {}
        self.ended = False
        self.reset_code: int | None = None
        self.exchange(ack=False)

    def exchange(self, *, ack: bool = True) -> None:
        """Client reads what the server sent; with `ack`, it gives the window back."""
        self.server.data_received(self.client.data_to_send())
        data, self.wire.sent = bytes(self.wire.sent), bytearray()
        for event in self.client.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                self.headers = {k.decode(): v.decode() for k, v in event.headers}
            elif isinstance(event, h2.events.DataReceived):
                self.frames.append(event.data)
                if ack and event.flow_controlled_length:
                    self.client.acknowledge_received_data(event.flow_controlled_length, 1)
            elif isinstance(event, h2.events.StreamEnded):
                self.ended = True
            elif isinstance(event, h2.events.StreamReset):
                self.reset_code = int(event.error_code)
        if ack:
            self.server.data_received(self.client.data_to_send())

    def write(self, data: bytes) -> None:
        """The handler writes `data` to its stream's transport."""
        self.handler.transport.write(data)

    @property
    def body(self) -> bytes:
        return b"".join(self.frames)


def chunked(piece: bytes) -> bytes:
    return b"%x\r\n" % len(piece) + piece + b"\r\n"


def send_body(pair: Pair, writes: list[bytes]) -> None:
    """The response head, each write as one chunk read by the client, then the last chunk."""
    pair.write(HEAD)
    for piece in writes:
        pair.write(chunked(piece))
        pair.exchange()
    pair.write(b"0\r\n\r\n")
    pair.exchange()


def sse_events(count: int, rng: random.Random) -> list[bytes]:
    """Server-sent events of varied lengths, as a Cerebras stream's are."""
    return [b'data: {"i":%d,"p":"%s"}\n\n' % (i, b"x" * rng.randint(20, 400)) for i in range(count)]


def ends_inside_events(frames: list[bytes], body: bytes) -> list[int]:
    """For each frame that ends inside an event, how far into that event it ends."""
    offsets, position = [], 0
    starts = [0] + [i + 2 for i in range(len(body)) if body.startswith(b"\n\n", i)]
    for frame in frames:
        position += len(frame)
        if position < len(body) and not body.startswith(b"\n\n", position - 2):
            offsets.append(position - max(s for s in starts if s <= position))
    return offsets


async def test_unpaced_writes_arrive_whole_with_frame_boundaries_at_varied_places() -> None:
    rng = random.Random(7)
    events = sse_events(3000, rng)
    pair = Pair()
    writes, pending = [], b""
    for event in events:  # coalesced as stream_http does: random 1-32 KiB pieces, whole events
        pending += event
        if len(pending) >= rng.randint(1024, 32768):
            writes.append(pending)
            pending = b""
    writes.append(pending)
    send_body(pair, writes)
    body = b"".join(events)
    assert pair.headers[":status"] == "200" and pair.headers["content-type"] == "text/event-stream"
    assert "transfer-encoding" not in pair.headers and "connection" not in pair.headers
    assert pair.body == body and pair.ended and pair.reset_code is None
    assert pair.frames[-1] == b"" and all(0 < len(frame) <= MAX_FRAME for frame in pair.frames[:-1])
    inside = ends_inside_events(pair.frames, body)
    assert len(inside) >= len(writes) // 2  # most writes have a frame end inside an event
    assert len(set(inside)) >= len(inside) // 2  # at many different places in the events
    small = [piece for piece in writes if 2 <= len(piece) <= MAX_FRAME]
    assert len(pair.frames) > len(writes) + len(small) // 3  # small writes get cut too


async def test_paced_writes_of_one_event_are_cut_inside_it() -> None:
    rng = random.Random(3)
    events = sse_events(200, rng)
    pair = Pair()
    send_body(pair, events)
    assert pair.body == b"".join(events) and pair.ended
    assert len(ends_inside_events(pair.frames, pair.body)) >= 100


async def test_without_split_writes_a_write_is_whole_frames() -> None:
    events = sse_events(200, random.Random(5))
    pair = Pair(split_writes=False)
    pair.write(HEAD)
    for event in events:
        pair.write(chunked(event))
        pair.exchange()
    big = b"y" * (2 * MAX_FRAME + 100)
    pair.write(chunked(big))
    pair.write(b"0\r\n\r\n")
    pair.exchange()
    assert pair.frames[: len(events)] == events
    assert [len(frame) for frame in pair.frames[len(events) :] if frame] == [MAX_FRAME, MAX_FRAME, 100]
    assert pair.ended


async def test_the_clients_window_holds_the_stream_and_pauses_the_handler() -> None:
    pair = Pair(window=10000)
    pair.write(HEAD)
    body = bytes(random.Random(1).randbytes(HIGH_WATER + 50000))
    for start in range(0, len(body), 20000):
        pair.write(chunked(body[start : start + 20000]))
    pair.write(b"0\r\n\r\n")
    pair.exchange(ack=False)
    assert len(pair.body) == 10000 and not pair.ended  # the window, not more
    assert pair.handler.paused == 1 and pair.handler.resumed == 0
    assert pair.handler.transport.get_write_buffer_size() == len(body) - 10000
    rounds = 0
    while not pair.ended and rounds < 1000:
        pair.client.increment_flow_control_window(10000, stream_id=1)
        pair.client.increment_flow_control_window(10000)
        pair.exchange(ack=False)
        rounds += 1
    assert pair.body == body and pair.ended
    assert all(len(frame) <= 10000 for frame in pair.frames)
    assert pair.handler.resumed == 1


async def test_headers_and_body_in_one_write_and_the_end_in_pieces() -> None:
    pair = Pair()
    pair.write(HEAD + chunked(b"data: one\n\n") + b"0")
    pair.write(b"\r\n")
    pair.exchange()
    assert pair.body == b"data: one\n\n" and not pair.ended
    pair.write(b"\r")
    pair.write(b"\n")
    pair.exchange()
    assert pair.ended and pair.handler.lost is False  # connection_lost comes on the next loop turn
    await asyncio.sleep(0)
    assert pair.handler.lost


async def test_a_chunked_body_fed_byte_by_byte_arrives_whole() -> None:
    pair = Pair()
    stream = HEAD + chunked(b"data: a\n\n") + b"B;name=value\r\n" + b"data: bcd\n\n\r\n" + b"0\r\nx-trailer: 1\r\n\r\n"
    for index in range(len(stream)):
        pair.write(stream[index : index + 1])
    pair.exchange()
    assert pair.body == b"data: a\n\ndata: bcd\n\n" and pair.ended


async def test_content_length_answers_and_head_requests_end_the_stream() -> None:
    pair = Pair()
    pair.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nContent-Type: text/plain\r\n\r\nnot found")
    pair.exchange()
    assert pair.headers[":status"] == "404" and pair.body == b"not found" and pair.ended
    head = Pair(method="HEAD")
    head.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
    head.exchange()
    assert head.headers["content-length"] == "1234" and head.body == b"" and head.ended


@pytest.mark.parametrize("how", ["close", "reset"])
async def test_an_answer_cut_short_is_a_reset_stream(how: str) -> None:
    pair = Pair()
    pair.write(HEAD + chunked(b"data: one\n\n"))
    pair.handler.transport.close() if how == "close" else pair.handler.transport.reset_stream()
    pair.exchange()
    assert pair.body == b"data: one\n\n" and not pair.ended
    assert pair.reset_code == h2.errors.ErrorCodes.INTERNAL_ERROR


async def test_an_unreadable_answer_is_a_reset_stream() -> None:
    pair = Pair()
    pair.write(HEAD + b"zz\r\nnot hex\r\n")
    pair.exchange()
    assert pair.reset_code == h2.errors.ErrorCodes.INTERNAL_ERROR and not pair.ended


def test_frame_ends_are_as_few_as_the_max_frame_allows_and_vary() -> None:
    rng = random.Random(11)
    for size in (1, 2, 100, MAX_FRAME, MAX_FRAME + 1, 2 * MAX_FRAME, 5 * MAX_FRAME + 7):
        minimum = -(-size // MAX_FRAME)
        assert frame_ends(size, MAX_FRAME, None) == [min(size, MAX_FRAME * i) for i in range(1, minimum + 1)]
        seen = set()
        for _ in range(200):
            ends = frame_ends(size, MAX_FRAME, rng)
            sizes = [b - a for a, b in zip([0, *ends], ends, strict=False)]
            assert ends[-1] == size and all(0 < s <= MAX_FRAME for s in sizes)
            assert len(ends) == minimum or (minimum == 1 and len(ends) == 2)
            seen.add(ends[0])
        possible = size if minimum == 1 else MAX_FRAME - (size - (minimum - 1) * MAX_FRAME) + 1
        assert len(seen) >= min(possible, 50)  # the first end falls anywhere it can
