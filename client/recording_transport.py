"""A transport that records: each request, its response and the raw streamed body with its read
boundaries, or a WebSocket's frames, go into the recording in progress (`--record FILE`).

It wraps the client's transport and costs one context-variable look-up per request when nothing
is being recorded. Entries are HAR 1.2 entries; the streamed body is also kept as harvestkit's
``_chunks`` (each read's offset in seconds and text), so a replay writes it back as it came.
"""

from __future__ import annotations

import json
import time
from typing import Any

from harvestkit.cache import Cookie
from harvestkit.common.har import new_entry
from harvestkit.common.recording import current_recording

from .base_transport import HTTPResponse, Request, Transport, WebSocketConnection

__all__ = ["RecordingTransport"]


def _entry(request: Request) -> dict[str, Any]:
    headers = [{"name": k, "value": v} for k, v in request.all_headers().items() if v is not None]
    cookies = [{"name": k, "value": v} for k, v in request.cookies.items()]
    post = None if request.json is None else ("application/json", json.dumps(request.json))
    return new_entry(request.method, request.url, headers, cookies, started=time.time(), resource_type="fetch", post=post)


class _Entries:
    """The client's part of one recording (a recording source)."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    async def document(self) -> dict[str, Any]:
        for entry in self.entries:  # the body as a whole too, for readers that know no `_chunks`
            if entry.get("_chunks"):
                text = "".join(chunk["text"] for chunk in entry["_chunks"])
                entry["response"]["content"].update(text=text, size=len(text))
        return {"log": {"version": "1.2", "entries": list(self.entries)}}


def _source() -> _Entries | None:
    trace = current_recording()
    return None if trace is None else trace.source_for("client", _Entries)


class _RecordedResponse:
    def __init__(self, inner: HTTPResponse, entry: dict[str, Any]) -> None:
        self._inner, self._entry = inner, entry
        self.provider, self.url, self.status = inner.provider, inner.url, inner.status
        self.headers, self.set_cookies = inner.headers, inner.set_cookies
        self._began = time.monotonic()
        self._chunks: list[dict[str, Any]] = []
        entry["_chunks"] = self._chunks
        response = entry["response"]
        response["status"] = inner.status
        response["headers"] = [{"name": k, "value": v} for k, v in inner.headers.items() if k != "set-cookie"]
        response["headers"] += [{"name": "set-cookie", "value": v} for v in inner.set_cookies]
        response["content"]["mimeType"] = inner.headers.get("content-type", "x-unknown")

    def _keep(self, data: bytes) -> None:
        self._chunks.append({"offset": round(time.monotonic() - self._began, 4), "text": data.decode("utf-8", "replace")})

    async def next_chunk(self, timeout: float) -> bytes | None:
        data = await self._inner.next_chunk(timeout)
        if data:
            self._keep(data)
        return data

    async def read(self, *args: Any, **kwargs: Any) -> bytes:
        data = await self._inner.read(*args, **kwargs)
        self._keep(data)
        return data

    async def aclose(self) -> None:
        self._entry["time"] = round((time.monotonic() - self._began) * 1000, 1)
        await self._inner.aclose()


class _RecordedSocket:
    def __init__(self, inner: WebSocketConnection, entry: dict[str, Any]) -> None:
        self._inner, self._entry = inner, entry
        self.provider, self.url = inner.provider, inner.url
        self.cookies: list[Cookie] = inner.cookies
        entry["response"]["status"] = 101
        entry["_resourceType"] = "websocket"
        entry["_webSocketMessages"] = []

    def _keep(self, kind: str, text: str) -> None:
        self._entry["_webSocketMessages"].append({"type": kind, "time": time.time(), "opcode": 1, "data": text})

    async def send(self, text: str) -> None:
        self._keep("send", text)
        await self._inner.send(text)

    async def recv(self, idle_timeout: float) -> str | None:
        text = await self._inner.recv(idle_timeout)
        if text is not None:
            self._keep("receive", text)
        return text

    def buffered(self) -> list[str]:
        frames = self._inner.buffered()
        for text in frames:
            self._keep("receive", text)
        return frames

    async def aclose(self) -> None:
        await self._inner.aclose()


class RecordingTransport:
    """Passes everything to `inner`; while a recording is in progress, records it too."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner

    async def send(self, request: Request) -> HTTPResponse:
        source = _source()
        if source is None:
            return await self.inner.send(request)
        entry = _entry(request)
        source.entries.append(entry)
        return _RecordedResponse(await self.inner.send(request), entry)

    async def websocket(self, request: Request) -> WebSocketConnection:
        source = _source()
        if source is None:
            return await self.inner.websocket(request)
        entry = _entry(request)
        source.entries.append(entry)
        return _RecordedSocket(await self.inner.websocket(request), entry)

    async def aclose(self) -> None:
        await self.inner.aclose()
