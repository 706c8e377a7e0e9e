"""How the agents WebSocket's frames leave the sandbox: unpaced, several to a write (coalesce.py),
with writes cut inside frames; paced, one a write; permessage-deflate unchanged."""
from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest
from harvestkit.sandbox import Sandbox, make_reply
from harvestkit.sandbox.coalesce import CoalescingTransport
from harvestkit.sandbox.state import SandboxState
from sandbox_helpers import cleared_session
from ws_helpers import Frame, raw_agent_reads

PROMPT = [{"role": "user", "parts": [{"type": "text", "text": "Hi there"}]}]


class Recorder(asyncio.Transport):
    """The TLS transport under the coalescer: keeps each write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


def coalescer(split_writes: bool = True) -> tuple[CoalescingTransport, Recorder]:
    state = SandboxState()
    state.knobs.split_writes = split_writes
    recorder = Recorder()
    return CoalescingTransport(recorder, state), recorder


def pieces(rng: random.Random, count: int) -> list[bytes]:
    """Stand-ins for WebSocket frames of varied sizes, each distinct."""
    return [b"<%d:" % i + b"x" * rng.randint(40, 300) + b">" for i in range(count)]


async def test_writes_pass_through_unless_coalesced() -> None:
    transport, recorder = coalescer()
    transport.write(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
    transport.write(b"frame")
    assert recorder.writes == [b"HTTP/1.1 101 Switching Protocols\r\n\r\n", b"frame"]


async def test_coalesced_frames_leave_in_writes_of_1_to_32_kib_cut_inside_frames() -> None:
    rng = random.Random(2)
    frames = pieces(rng, 3000)
    transport, recorder = coalescer()
    with transport.coalesced():
        for frame in frames:
            transport.write(frame)
    stream = b"".join(frames)
    assert b"".join(recorder.writes) == stream  # every byte, in order
    assert len(recorder.writes) < len(frames) / 20  # many frames a write
    assert all(len(write) <= 2 * 16384 + 302 for write in recorder.writes)
    ends, position = set(), 0
    for frame in frames:
        position += len(frame)
        ends.add(position)
    cuts, position = 0, 0
    for write in recorder.writes:
        position += len(write)
        cuts += position not in ends
    assert cuts >= len(recorder.writes) // 5  # writes cut inside a frame, so frames straddle reads


async def test_what_is_gathered_goes_out_when_the_task_yields_and_before_close() -> None:
    transport, recorder = coalescer(split_writes=False)
    with transport.coalesced():
        transport.write(b"one")
        transport.write(b"two")
        assert recorder.writes == []
        await asyncio.sleep(0)
        assert recorder.writes == [b"onetwo"]
        transport.write(b"three")
        transport.close()
        assert recorder.writes == [b"onetwo", b"three"] and recorder.closed
    transport, recorder = coalescer(split_writes=False)
    with transport.coalesced():
        transport.write(b"last")
        transport.abort()
    assert recorder.writes == [b"last"] and recorder.aborted


async def test_without_split_writes_writes_are_about_16_kib_and_whole_frames() -> None:
    frames = pieces(random.Random(4), 2000)
    transport, recorder = coalescer(split_writes=False)
    with transport.coalesced():
        for frame in frames:
            transport.write(frame)
    assert b"".join(recorder.writes) == b"".join(frames)
    assert all(16384 <= len(write) < 16384 + 310 for write in recorder.writes[:-1])


# -- through the proxy, read raw ---------------------------------------------------------------
def answer_text(frames: list[Frame]) -> str:
    bodies = []
    for frame in frames:
        assert frame.opcode == 1  # text, whole and valid
        message = json.loads(frame.text)
        if message["type"] == "cf_agent_use_chat_response" and message["body"] and not message.get("error"):
            assert message["id"] == "req_1"
            bodies.append(json.loads(message["body"]))
    assert json.loads(frames[-1].text)["done"] is True
    return "".join(body["delta"] for body in bodies if body["type"] == "text-delta")


def frames_per_read(reads: list[bytes], frames: list[Frame]) -> list[int]:
    """How many frames start in each read."""
    counts, position, index = [], 0, 0
    for read in reads:
        position += len(read)
        start = index
        while index < len(frames) and frames[index].start < position:
            index += 1
        counts.append(index - start)
    return counts


def straddling(reads: list[bytes], frames: list[Frame]) -> int:
    """Frames that a read boundary cuts."""
    boundaries, position = set(), 0
    for read in reads:
        position += len(read)
        boundaries.add(position)
    return sum(any(frame.start < b < frame.end for b in boundaries) for frame in frames)


@pytest.mark.parametrize("deflate", [False, True], ids=["plain", "permessage-deflate"])
async def test_an_unpaced_answer_arrives_several_frames_to_a_read(sandbox: Sandbox, deflate: bool) -> None:
    sandbox.set_knobs(reply_tokens=3000)
    async with await cleared_session(sandbox) as http:
        cookies = dict(http.cookies.items())
    reads, frames = await asyncio.to_thread(raw_agent_reads, sandbox, cookies, deflate=deflate)
    assert answer_text(frames) == make_reply(PROMPT, reply_tokens=3000).text
    assert all(frame.compressed for frame in frames) is deflate
    counts = frames_per_read(reads, frames)
    assert max(counts) >= 10 and sum(count >= 2 for count in counts) >= len(counts) // 2
    assert len(reads) < len(frames) / 5
    if not deflate:  # the compressed answer is a dozen reads: too few to count on a cut frame
        assert straddling(reads, frames) >= 1  # frames cross reads (the cuts themselves: above)


async def test_a_paced_answer_arrives_one_frame_to_a_read(sandbox: Sandbox) -> None:
    sandbox.set_knobs(reply_tokens=60, pace=0.002)
    async with await cleared_session(sandbox) as http:
        cookies = dict(http.cookies.items())
    reads, frames = await asyncio.to_thread(raw_agent_reads, sandbox, cookies)
    assert answer_text(frames) == make_reply(PROMPT, reply_tokens=60).text
    assert frames_per_read(reads, frames) == [1] * len(frames)
    assert straddling(reads, frames) == 0


async def test_frames_of_a_recovery_midway_keep_their_place(sandbox: Sandbox) -> None:
    sandbox.set_knobs(reply_tokens=2000, agents_recovering=True, agents_resume="own")
    async with await cleared_session(sandbox) as http:
        cookies = dict(http.cookies.items())
    reads, frames = await asyncio.to_thread(raw_agent_reads, sandbox, cookies)
    messages = [json.loads(frame.text) for frame in frames]
    kinds = [m["type"] for m in messages]
    recovering = [i for i, kind in enumerate(kinds) if kind == "cf_agent_chat_recovering"]
    assert len(recovering) == 2
    answers = [i for i, m in enumerate(messages) if m["type"] == "cf_agent_use_chat_response" and not m.get("replay")]
    before = [i for i in answers if i < recovering[0]]
    replayed = [i for i, m in enumerate(messages) if m.get("replay")]
    assert replayed and recovering[0] < min(replayed) and max(replayed) < recovering[1]
    assert len(before) >= 900 and max(frames_per_read(reads, frames)) >= 10
    assert answer_text([frames[i] for i in answers] + [frames[-1]]) == make_reply(PROMPT, reply_tokens=2000).text
