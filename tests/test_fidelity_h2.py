"""GOAWAY racing requests in flight on HTTP/2 (issue 18): a front draining a connection mid-answer.

Server side, frame by frame: a graceful GOAWAY names the stream in flight, which is served to its
end; a stream opened after it is refused with REFUSED_STREAM; then the connection closes. Client
side: the answer in flight completes, a request racing the GOAWAY completes on a new connection,
and an abrupt GOAWAY gives a typed error that keeps the text, never a hang.
"""
from __future__ import annotations

import asyncio
import json

import h2.config
import h2.connection
import h2.errors
import pytest
from h2_helpers import open_tls
from harvestkit.client import Cerebras, StreamBroken, chat
from harvestkit.sandbox import Sandbox
from harvestkit.sandbox.shortcuts import sandbox_session, sign_in
from hyperframe.frame import DataFrame, Frame, GoAwayFrame, RstStreamFrame

MODEL = "gemma-4-31b"  # not a reasoning model: the text starts with the first chunks
GOAWAY_HEADER = b"\x00\x00\x08\x07\x00\x00\x00\x00\x00"  # length 8, type 7, no flags, stream 0


def parse(data: bytes) -> tuple[list[Frame], bytes]:
    """The whole frames in `data`, and the bytes of an unfinished one."""
    frames = []
    while len(data) >= 9:
        frame, length = Frame.parse_frame_header(memoryview(data[:9]))
        if len(data) < 9 + length:
            break
        frame.parse_body(memoryview(data[9 : 9 + length]))
        frames.append(frame)
        data = data[9 + length :]
    return frames, data


def raw_frames(conn, data: bytes = b"", limit: float = 10.0) -> list[Frame]:
    """Every frame the server sends (after `data`, already read) until it closes the connection."""
    conn.settimeout(limit)
    frames: list[Frame] = []
    while True:
        found, data = parse(data)
        frames += found
        if not (chunk := conn.recv(65536)):
            return frames
        data += chunk


def post(client: h2.connection.H2Connection, stream_id: int, key: str) -> None:
    body = json.dumps({"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "Hi"}]}).encode()
    client.send_headers(stream_id, [
        (":method", "POST"), (":authority", "api.cerebras.ai"), (":scheme", "https"), (":path", "/v1/chat/completions"),
        ("authorization", f"Bearer {key}"), ("content-type", "application/json"), ("content-length", str(len(body))),
    ])  # fmt: skip
    client.send_data(stream_id, body, end_stream=True)


def drain_with_a_late_stream(sandbox: Sandbox, key: str) -> list[Frame]:
    """Stream 1 in flight, GOAWAY after its third chunk; stream 3 opened after the GOAWAY."""
    conn = open_tls(sandbox, "api.cerebras.ai")
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    client.initiate_connection()
    post(client, 1, key)
    conn.sendall(client.data_to_send())
    conn.settimeout(10)
    seen = b""
    while GOAWAY_HEADER not in seen:
        if not (chunk := conn.recv(65536)):
            raise AssertionError("the connection closed before a GOAWAY")
        seen += chunk
    post(client, 3, key)  # the client has not read the GOAWAY yet: a request racing it
    conn.sendall(client.data_to_send())
    try:
        return raw_frames(conn, seen)
    finally:
        conn.close()


async def test_graceful_goaway_serves_the_stream_in_flight_and_refuses_a_later_one(sandbox: Sandbox) -> None:
    async with sandbox_session(sandbox.env) as http:
        key = (await sign_in(http))["user"]["demoApiKey"]
    sandbox.set_knobs(reply_tokens=30, pace=0.005)
    sandbox.fault("cerebras.chat", goaway_after=3)
    frames = await asyncio.to_thread(drain_with_a_late_stream, sandbox, key)
    (goaway,) = [f for f in frames if isinstance(f, GoAwayFrame)]
    at = frames.index(goaway)
    assert goaway.last_stream_id == 1 and goaway.error_code == h2.errors.ErrorCodes.NO_ERROR
    after = [f for f in frames[at:] if isinstance(f, DataFrame) and f.stream_id == 1]
    assert after and "END_STREAM" in after[-1].flags  # the stream in flight went on to its end
    text = "".join(
        json.loads(line[6:])["choices"][0]["delta"].get("content", "")
        for line in b"".join(f.data for f in frames if isinstance(f, DataFrame)).decode().split("\n")
        if line.startswith("data: {") and json.loads(line[6:])["choices"]
    )
    assert text.startswith("Sandbox reply to: Hi.")
    refused = [f for f in frames if isinstance(f, RstStreamFrame) and f.stream_id == 3]
    assert [f.error_code for f in refused] == [h2.errors.ErrorCodes.REFUSED_STREAM]


async def test_client_finishes_the_answer_in_flight_and_reconnects(client_env) -> None:
    sandbox = client_env.sandbox
    sandbox.set_knobs(reply_tokens=30, pace=0.002)
    whole = await chat("Tell me a story", model=MODEL)
    sandbox.fault("cerebras.chat", goaway_after=5)
    connections = sandbox.handshakes("api.cerebras.ai")
    async with asyncio.timeout(15):
        drained = await chat("Tell me a story", model=MODEL)
        after = await chat("Tell me a story", model=MODEL)
    assert drained.text == whole.text and after.text == whole.text
    assert sandbox.handshakes("api.cerebras.ai") == connections + 1  # the drained one is not reused
    assert [r.protocol for r in client_env.chats()] == ["h2"] * 3


async def test_a_request_racing_the_goaway_completes(client_env) -> None:
    sandbox = client_env.sandbox
    sandbox.set_knobs(reply_tokens=60, pace=0.01)
    long_whole = await chat("Tell me a story", model=MODEL)
    short_whole = await chat("Hi", model=MODEL)
    sandbox.fault("cerebras.chat", goaway_after=4)
    stream = Cerebras.stream("Tell me a story", model=MODEL)
    async with asyncio.timeout(20):
        async with stream:
            first = await stream.__anext__()
            racing = asyncio.create_task(chat("Hi", model=MODEL))  # on the connection the GOAWAY drains
            rest = [e async for e in stream]
        short = await racing
    assert first is not None and rest and stream.text == long_whole.text
    assert short.text == short_whole.text


async def test_abrupt_goaway_is_a_typed_error_that_keeps_the_text(client_env) -> None:
    client_env.sandbox.set_knobs(reply_tokens=30, pace=0.002)
    whole = await chat("Tell me a story", model=MODEL)
    client_env.sandbox.fault("cerebras.chat", goaway_after=12, goaway_graceful=False)
    with pytest.raises(StreamBroken) as caught:
        async with asyncio.timeout(15):
            await chat("Tell me a story", model=MODEL)
    assert caught.value.text and whole.text.startswith(caught.value.text) and caught.value.text != whole.text
    assert (await chat("Tell me a story", model=MODEL)).text == whole.text  # a new connection serves again
