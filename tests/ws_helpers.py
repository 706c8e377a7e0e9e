"""A raw WebSocket reader of the agents socket: curl (Chrome's TLS, so the challenge's clearance
holds) in raw mode, which hands over the bytes of each read as they came, unframed by curl.

It sends its frames itself (masked with a zero key) and parses the server's with `FrameReader`,
so a test sees where reads end relative to frames, and what permessage-deflate did to them.
"""
from __future__ import annotations

import json
import struct
import uuid
import zlib
from dataclasses import dataclass

from curl_cffi import Curl, CurlOpt
from harvestkit.sandbox import Sandbox
from harvestkit.sandbox.shortcuts import CHROME_UA
from sandbox_helpers import PLAYGROUND

CURL_WRITEFUNC_ERROR = 0xFFFFFFFF  # what a write callback returns to stop the transfer
IMPERSONATE = "chrome150"
MODEL = "@cf/meta/llama-3.1-8b-instruct-fast"
DONE = b'"done":true'


@dataclass
class Frame:
    opcode: int
    compressed: bool  # RSV1: permessage-deflate
    text: bytes  # the payload, inflated when it was compressed
    start: int  # where it starts and ends in the byte stream
    end: int


class FrameReader:
    """The server's frames (unmasked), read from the byte stream as it comes."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self._buffer = bytearray()
        self._offset = 0  # the buffer's start in the stream
        self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)  # context takeover: one for the socket

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while (frame := self._next()) is not None:
            self.frames.append(frame)

    def _next(self) -> Frame | None:
        data = self._buffer
        if len(data) < 2:
            return None
        length, head = data[1] & 0x7F, 2
        if length >= 126:
            head = 4 if length == 126 else 10
            if len(data) < head:
                return None
            length = int.from_bytes(data[2:head], "big")
        if len(data) < head + length:
            return None
        compressed, payload = bool(data[0] & 0x40), bytes(data[head : head + length])
        text = self._inflate.decompress(payload + b"\x00\x00\xff\xff") if compressed else payload
        frame = Frame(data[0] & 0x0F, compressed, text, self._offset, self._offset + head + length)
        del data[: head + length]
        self._offset = frame.end
        return frame


def client_frame(text: str) -> bytes:
    """A masked text frame (a zero mask leaves the payload as it is)."""
    data = text.encode()
    length = bytes([0x80 | len(data)]) if len(data) < 126 else bytes([0x80 | 126]) + struct.pack("!H", len(data))
    return b"\x81" + length + b"\0\0\0\0" + data


def chat_frames(text: str = "Hi there") -> list[bytes]:
    body = {"messages": [{"id": "m1", "role": "user", "parts": [{"type": "text", "text": text}]}], "trigger": "submit-message"}
    return [
        client_frame(json.dumps({"type": "cf_agent_state", "state": {"model": MODEL, "temperature": 1, "stream": True}})),
        client_frame(json.dumps({"type": "cf_agent_use_chat_request", "id": "req_1", "init": {"method": "POST", "body": json.dumps(body)}})),
    ]


def raw_agent_reads(sandbox: Sandbox, cookies: dict[str, str], *, deflate: bool = False) -> tuple[list[bytes], list[Frame]]:
    """Open the agents socket, ask for one answer, and return the bytes of each read and the
    frames, up to the answer's last (blocking: run it in a thread)."""
    curl = Curl(cacert=sandbox.ca_bundle)
    assert curl.impersonate(IMPERSONATE) == 0
    url = f"wss://playground.ai.cloudflare.com/agents/playground/Cloudflare-AI-Playground-raw?_pk={uuid.uuid4()}"
    curl.setopt(CurlOpt.URL, url.encode())
    curl.setopt(CurlOpt.PROXY, sandbox.proxy_url.encode())
    curl.setopt(CurlOpt.WS_OPTIONS, 1)  # CURLWS_RAW_MODE
    headers = [f"Origin: {PLAYGROUND}", f"User-Agent: {CHROME_UA}", "Cookie: " + "; ".join(f"{k}={v}" for k, v in cookies.items())]
    if deflate:  # as Chromium offers it
        headers.append("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
    curl.setopt(CurlOpt.HTTPHEADER, [header.encode() for header in headers])
    reads: list[bytes] = []
    reader = FrameReader()

    def on_read(data: bytes) -> int:
        if not reads:  # the greeting came: the socket is open
            for frame in chat_frames():
                curl.ws_send(frame, 0)
        reads.append(data)
        known = len(reader.frames)
        reader.feed(data)
        if any(DONE in frame.text for frame in reader.frames[known:]):
            return CURL_WRITEFUNC_ERROR  # the answer is complete: stop
        return len(data)

    curl.setopt(CurlOpt.WRITEFUNCTION, on_read)
    try:
        curl.perform()
    except Exception as exc:  # noqa: BLE001 - the stop above ends the transfer with an error
        if "(23)" not in str(exc):
            raise
    finally:
        curl.close()
    return reads, reader.frames
