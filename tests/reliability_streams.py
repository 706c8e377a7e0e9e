"""Recorded streams, replayed through the client's own code with a fake network under it.

`record()` runs one real chat against the sandbox and keeps what the client's transport handed
up: status, headers and body bytes (HTTP generations) or text frames (the agents socket).
`replay()` then runs a whole provider call (`Provider.stream` -> retries -> `Call.events` ->
`transport.Response.next_chunk` / `transport.WebSocket.recv` -> the parser) on that recording cut
at some offset and ended in one of three ways, with only curl_cffi's objects replaced by fakes:

- "close": the transfer ends (curl_cffi's end marker) or the socket closes;
- "reset": the connection breaks (curl_cffi's error, as curl reports a truncated body);
- "silence": nothing more ever comes, the connection stays open.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from curl_cffi.requests import Headers
from curl_cffi.requests import exceptions as curl_errors
from curl_cffi.requests.models import STREAM_END
from curl_cffi import CurlECode, CurlError, CurlInfo, CurlWsFlag
from curl_cffi._wrapper import ffi
from harvestkit.client import (
    Cerebras,
    Cloudflare,
    ConnectError,
    Settings,
    StreamBroken,
    Timeout,
    aclose,
)
from harvestkit.client.parsers.agents import AgentChatParser
from harvestkit.client.parsers.datastream import DataStreamParser
from harvestkit.client.parsers.openai import OpenAIStreamParser
from harvestkit.client.parsers.uistream import UIStreamParser
from harvestkit.client.parsers.workers import WorkersParser
from harvestkit.client.provider import Provider
from harvestkit.client.transport import Request, Response, Transport, WebSocket
import harvestkit.client.transport as transport_module
from harvestkit.sandbox import Sandbox

KINDS = ("cerebras", "data-stream", "ui-stream", "sse", "agents")
ENDINGS = ("close", "reset", "silence")
CEREBRAS_MODEL, CLOUDFLARE_MODEL = "gemma-4-31b", "@cf/meta/llama-3.1-8b-instruct-fast"
PARSERS = {"cerebras": OpenAIStreamParser, "data-stream": DataStreamParser, "ui-stream": UIStreamParser,
           "sse": WorkersParser}  # fmt: skip


@dataclass
class Recording:
    """What the client received for one chat."""

    kind: str
    text: str  # the whole answer's text
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    frames: list[str] = field(default_factory=list)
    request_id: str = ""  # the chat request's id inside the recorded frames

    @property
    def size(self) -> int:
        return len(self.frames) if self.kind == "agents" else len(self.body)


def call(kind: str, **kwargs: Any) -> Any:
    """The provider call for ``kind`` (a ChatStream)."""
    if kind == "cerebras":
        return Cerebras.stream("Hi", model=CEREBRAS_MODEL, **kwargs)
    return Cloudflare.stream("Hi", model=CLOUDFLARE_MODEL, transport=kind, **kwargs)


def set_knobs(sandbox: Any, kind: str, **knobs: Any) -> None:
    """The sandbox answers ``kind`` with the short reply the recordings hold."""
    sandbox.set_knobs(reply_tokens=4, generation=kind if kind != "cerebras" else "agents", **knobs)


def direct(monkeypatch: pytest.MonkeyPatch) -> None:
    """Providers talk to the given URLs directly: no proxy, no sandbox CA."""
    for provider in (Cerebras, Cloudflare):
        monkeypatch.setattr(provider, "settings", Settings())


def record_all(tmp: Path) -> dict[str, Recording]:
    """A recording of every kind, from a sandbox of their own (for a module-scoped fixture)."""
    from client_helpers import StandInHarvester

    with Sandbox() as sandbox, pytest.MonkeyPatch.context() as patch:
        patch.setenv("HARVESTKIT_HOME", str(tmp))
        for name, value in sandbox.env.items():
            patch.setenv(name, value)
        settings = Settings.from_env(harvest=StandInHarvester(sandbox))
        for provider in (Cerebras, Cloudflare):
            patch.setattr(provider, "settings", settings)
            patch.setattr(provider, "_live_models", {})

        async def every_kind() -> dict[str, Recording]:
            try:
                return {kind: await record(kind, sandbox, patch) for kind in KINDS}
            finally:
                await aclose()

        return asyncio.run(every_kind())


async def record(kind: str, sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Recording:
    """One real chat of ``kind`` against ``sandbox`` (providers already pointed at it)."""
    set_knobs(sandbox, kind)
    rec = Recording(kind, "")
    original_send, original_socket = Transport.send, Transport.websocket

    async def send(self: Transport, request: Request) -> Response:
        response = await original_send(self, request)
        if not request.url.endswith(("/chat/completions", "/api/inference")):
            return response
        rec.status, rec.headers = response.status, list(response._raw.headers.multi_items())
        next_chunk = response.next_chunk

        async def recording(timeout: float) -> bytes | None:
            data = await next_chunk(timeout)
            rec.body += data or b""
            return data

        response.next_chunk = recording  # type: ignore[method-assign]
        return response

    async def websocket(self: Transport, request: Request) -> WebSocket:
        ws = await original_socket(self, request)
        recv, send_text = ws.recv, ws.send

        async def recording_recv(idle: float) -> str | None:
            frame = await recv(idle)
            if frame is not None:
                rec.frames.append(frame)
            return frame

        async def recording_send(text: str) -> None:
            message = json.loads(text)
            if message.get("type") == "cf_agent_use_chat_request":
                rec.request_id = message["id"]
            await send_text(text)

        ws.recv, ws.send = recording_recv, recording_send  # type: ignore[method-assign]
        return ws

    with monkeypatch.context() as patch:
        patch.setattr(Transport, "send", send)
        patch.setattr(Transport, "websocket", websocket)
        rec.text = (await call(kind).collect()).text
    assert rec.text.startswith("Sandbox reply to: Hi") and rec.size, rec
    return rec


# -- the fakes: curl_cffi's streamed response and WebSocket, as the transport uses them ------------


class FakeRaw:
    """A streamed curl_cffi response whose body is ``body`` and then ``ending``."""

    def __init__(self, rec: Recording, body: bytes, ending: str, queue: Any = None) -> None:
        self.status_code, self.headers = rec.status, Headers(rec.headers)
        self.queue: Any = queue
        if queue is None:
            self.queue = asyncio.Queue()
            third = max(len(body) // 3, 1)
            for start in range(0, len(body), third):  # several pieces waiting: next_chunk joins them
                self.queue.put_nowait(body[start : start + third])
            if ending == "reset":
                self.queue.put_nowait(curl_errors.ConnectionError(
                    "Failed to perform, curl: (18) transfer closed with outstanding read data remaining", 18
                ))  # fmt: skip
            if ending != "silence":
                self.queue.put_nowait(STREAM_END)
        self.quit_now = asyncio.Event()
        self.astream_task = asyncio.ensure_future(self.quit_now.wait() if ending == "silence" else asyncio.sleep(0))
        self.curl = None


class FakeSocket:
    """A connected curl_cffi AsyncWebSocket whose curl handle delivers ``frames`` and then
    ``ending``: "close" is a close frame (even cuts) or curl's end of connection (odd ones).
    The handle answers libcurl's ``curl_ws_recv`` (see :func:`fake_ws_recv`), as the
    transport calls it."""

    def __init__(self, rec: Recording, frames: list[str], ending: str) -> None:
        self.rec, self.frames, self.ending, self.cut = rec, list(frames), ending, len(frames)
        self.closed = False
        self.request_id = rec.request_id
        self.curl = self
        self._curl = self  # the CURL* the transport passes to curl_ws_recv
        self._pair = socket.socketpair()  # never written to: the fd never becomes readable
        self._meta: Any = None
        self._error: CurlError | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def getinfo(self, option: CurlInfo) -> Any:
        return self._pair[0].fileno() if option == CurlInfo.ACTIVESOCKET else []

    def ws_recv_into(self, buffer: Any, size: int, received: Any, meta: Any) -> int:
        """curl_ws_recv: the next frame into ``buffer``, its size and meta; else an error code."""
        if self.frames:
            data, flags = self.frames.pop(0).replace(self.rec.request_id, self.request_id).encode(), CurlWsFlag.TEXT
        elif self.ending == "close" and self.cut % 2 == 0:
            data, flags = b"\x03\xe8", CurlWsFlag.CLOSE
        else:
            if self.ending == "close":
                self._error = CurlError("Failed to recv, curl: (52) Empty reply from server", CurlECode.GOT_NOTHING)
            elif self.ending == "reset":
                self._error = CurlError("Failed to recv, curl: (56) Recv failure: Connection reset by peer", CurlECode.RECV_ERROR)
            else:  # silence
                return int(CurlECode.AGAIN)
            return int(self._error.code)
        ffi.memmove(buffer, data, len(data))
        received[0] = len(data)
        self._meta = ffi.new("struct curl_ws_frame *", {"flags": int(flags), "bytesleft": 0})
        meta[0] = self._meta
        return 0

    def _get_error(self, code: int, *args: Any) -> CurlError | None:
        return self._error

    async def send_str(self, text: str) -> None:
        message = json.loads(text)
        if message.get("type") == "cf_agent_use_chat_request":
            self.request_id = message["id"]

    async def close(self) -> None:
        self.terminate()

    def terminate(self) -> None:
        self.closed = True
        for end in self._pair:
            end.close()


def fake_ws_recv(handle: FakeSocket, buffer: Any, size: int, received: Any, meta: Any) -> int:
    """libcurl's curl_ws_recv on a :class:`FakeSocket`'s handle."""
    return handle.ws_recv_into(buffer, size, received, meta)


@dataclass
class Outcome:
    """How one replay ended: the text the caller was given, and the error raised (if any)."""

    text: str
    error: BaseException | None
    seconds: float


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No live model lists (they would need the network): the model check is skipped."""

    async def no_models(cls: type[Provider], call: Any, credentials: Any = None) -> None:
        return None

    monkeypatch.setattr(Provider, "_models", classmethod(no_models))
    for name in ("HARVESTKIT_PROXY", "HARVESTKIT_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    yield None


HANG_GUARD = 30.0  # seconds; generous, since a loaded machine parses 10 MB slowly, and only a hang reaches it


async def run(rec: Recording, idle: float = 0.02, **kwargs: Any) -> Outcome:
    """One provider call of ``rec``'s kind, no retries; what the caller got, and the error."""
    texts: list[str] = []
    started = time.monotonic()
    try:
        async with asyncio.timeout(HANG_GUARD):  # a hang fails the test here
            async with call(rec.kind, max_retries=0, idle_timeout=idle, **kwargs) as stream:
                async for event in stream:
                    if isinstance(event, str):
                        texts.append(event)
    except Exception as exc:  # noqa: BLE001 - judged by the caller
        return Outcome("".join(texts), exc, time.monotonic() - started)
    return Outcome("".join(texts), None, time.monotonic() - started)


def explicit(rec: Recording) -> dict[str, Any]:
    """Explicit credentials for ``rec``'s provider: no cache, no harvest."""
    return {"api_key": "csk-replay"} if rec.kind == "cerebras" else {"cookies": {"cf_clearance": "replay"}}


async def replay(rec: Recording, cut: int, ending: str, monkeypatch: pytest.MonkeyPatch, idle: float = 0.02) -> Outcome:
    """A whole provider call on ``rec`` cut at ``cut`` (bytes, or frames for the socket)."""
    provider = Cerebras if rec.kind == "cerebras" else Cloudflare

    async def send(request: Request) -> Response:
        return Response(FakeRaw(rec, rec.body[:cut], ending), None, provider.site, request.url)  # type: ignore[arg-type]

    async def websocket(request: Request) -> WebSocket:
        return WebSocket(FakeSocket(rec, rec.frames[:cut], ending), provider.site, request.url)

    monkeypatch.setattr(transport_module, "_ws_recv", fake_ws_recv)
    monkeypatch.setattr(provider._transport, "send", send)
    monkeypatch.setattr(provider._transport, "websocket", websocket)
    return await run(rec, idle, **explicit(rec))


def delivered(rec: Recording, cut: int) -> str:
    """The text a fresh parser produces from what arrived before the cut (before any close)."""
    if rec.kind == "agents":
        parser: Any = AgentChatParser(rec.request_id)
        texts = []
        for frame in rec.frames[:cut]:
            try:
                texts += [e for e in parser.feed(frame) if isinstance(e, str)]
            except StreamBroken:
                break
        return "".join(texts)
    try:
        return "".join(e for e in PARSERS[rec.kind]().feed(rec.body[:cut]) if isinstance(e, str))
    except StreamBroken as exc:
        return exc.text


def judge(rec: Recording, cut: int | None, ending: str, outcome: Outcome) -> str | None:
    """What is wrong with ``outcome`` (None: nothing). Allowed: the whole answer; StreamBroken
    (incl. ProtocolError, StreamTimeout) whose text is what the caller got, a prefix of the answer,
    and holds all that arrived before byte ``cut`` of the body (when known); ConnectError or
    Timeout only if no text had come (a failure before the first chunk, which the client retries)."""
    where = f"{rec.kind} cut at {cut}/{rec.size}, {ending}"
    if not rec.text.startswith(outcome.text):
        return f"{where}: text {outcome.text!r} is not a prefix of the answer"
    if cut is not None and not outcome.text.startswith(delivered(rec, cut)):
        return f"{where}: text {outcome.text!r} lost some of {delivered(rec, cut)!r}"
    error = outcome.error
    if error is None:
        return None if outcome.text == rec.text else f"{where}: ended quietly with a partial answer {outcome.text!r}"
    if isinstance(error, StreamBroken):
        return None if error.text == outcome.text else f"{where}: error text {error.text!r} != {outcome.text!r}"
    if isinstance(error, (ConnectError, Timeout)) and not outcome.text:
        return None
    return f"{where}: raised {type(error).__name__}: {error}"
