"""Record what a browser tab sends and receives as a HAR 1.2 document, in the shape Chrome's
DevTools saves ("Export HAR (with sensitive data)").

The wire headers come from the ExtraInfo events, as in DevTools: requests carry their real
``Cookie`` header, responses their ``Set-Cookie`` headers. Bodies (all but images, media and
fonts) are read when they finish; WebSocket frames go into ``_webSocketMessages``. The result
holds secrets, like the file DevTools writes: scrub it (`harvestkit.common.scrub`) to share it.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from harvestkit.common.har import new_entry

from .network import request_post_data

__all__ = ["HarRecorder"]

_NO_BODY_TYPES = {"Image", "Media", "Font", "WebSocket"}  # DevTools keeps the others' bodies too
_MAX_BODY = 8 * 1024 * 1024  # bytes of response bodies the tab keeps for the recording


@dataclass
class _Exchange:
    request: Any = None
    resource_type: str = ""
    started: float = 0.0
    wall: float = 0.0
    wire_request: dict[str, str] | None = None
    response: Any = None
    wire_response: dict[str, str] | None = None
    body: tuple[str, bool] | None = None
    frames: list[dict[str, Any]] = field(default_factory=list)


class HarRecorder:
    """Listens to one nodriver tab's Network events; :meth:`document` gives the HAR."""

    def __init__(self, tab: Any) -> None:
        self.tab = tab
        self._exchanges: dict[str, _Exchange] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def attach(self) -> Any:
        """Register the handlers; returns the CDP command that turns the events on (to send)."""
        from nodriver import cdp

        network = cdp.network
        handlers = {
            network.RequestWillBeSent: self._request,
            network.RequestWillBeSentExtraInfo: self._request_extra,
            network.ResponseReceived: self._response,
            network.ResponseReceivedExtraInfo: self._response_extra,
            network.LoadingFinished: self._finished,
            network.WebSocketCreated: self._socket,
            network.WebSocketFrameSent: lambda e: self._frame(e, "send"),
            network.WebSocketFrameReceived: lambda e: self._frame(e, "receive"),
        }
        for event, handler in handlers.items():
            self.tab.add_handler(event, self._guarded(handler))
        return network.enable(  # durable: bodies survive the navigation that often follows them
            max_total_buffer_size=_MAX_BODY, max_resource_buffer_size=_MAX_BODY, enable_durable_messages=True
        )

    @staticmethod
    def _guarded(handler: Any) -> Any:
        def handle(event: Any, _tab: Any = None) -> None:
            with contextlib.suppress(Exception):  # a recording never breaks the page it records
                handler(event)

        return handle

    def _get(self, request_id: Any) -> _Exchange:
        return self._exchanges.setdefault(str(request_id), _Exchange())

    def _request(self, event: Any) -> None:
        key = str(event.request_id)
        if event.redirect_response is not None and key in self._exchanges:  # a redirect keeps the id:
            earlier = self._exchanges.pop(key)  # the hop so far becomes an entry of its own
            earlier.response = event.redirect_response
            self._exchanges[f"{key}:{len(self._exchanges)}"] = earlier
        exchange = self._get(key)
        exchange.request, exchange.started = event.request, float(event.timestamp)
        exchange.wall = float(event.wall_time)
        exchange.resource_type = str(event.type_.value if event.type_ is not None else "Other")

    def _request_extra(self, event: Any) -> None:
        self._get(event.request_id).wire_request = {str(k): str(v) for k, v in (event.headers or {}).items()}

    def _response(self, event: Any) -> None:
        self._get(event.request_id).response = event.response

    def _response_extra(self, event: Any) -> None:
        self._get(event.request_id).wire_response = {str(k): str(v) for k, v in (event.headers or {}).items()}

    def _finished(self, event: Any) -> None:
        exchange = self._exchanges.get(str(event.request_id))
        if exchange is not None and exchange.resource_type not in _NO_BODY_TYPES:
            task = asyncio.ensure_future(self._read_body(str(event.request_id), exchange))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _read_body(self, request_id: str, exchange: _Exchange) -> None:
        from nodriver import cdp

        with contextlib.suppress(Exception):  # a body the tab no longer holds: none in the HAR
            body, encoded = await self.tab.send(cdp.network.get_response_body(cdp.network.RequestId(request_id)))
            exchange.body = (body, bool(encoded))

    def _socket(self, event: Any) -> None:
        exchange = self._get(event.request_id)
        exchange.resource_type = "WebSocket"

    def _frame(self, event: Any, kind: str) -> None:
        frame = event.response
        self._get(event.request_id).frames.append(
            {"type": kind, "time": float(event.timestamp), "opcode": int(frame.opcode), "data": frame.payload_data}
        )

    async def document(self) -> dict[str, Any]:
        """The HAR 1.2 document of everything recorded so far (bodies still being read awaited)."""
        pending = [task for task in self._tasks if not task.done()]  # none once the loop has ended
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        entries = [_entry(x) for x in self._exchanges.values() if x.request is not None]
        entries.sort(key=lambda e: e["startedDateTime"])
        return {
            "log": {
                "version": "1.2",
                "creator": {"name": "WebInspector", "version": "537.36"},
                "pages": [],
                "entries": entries,
            }
        }


def _pairs(headers: dict[str, str]) -> list[dict[str, str]]:
    out = []
    for name, value in headers.items():  # CDP joins repeated headers (Set-Cookie) with newlines
        out.extend({"name": name, "value": line} for line in str(value).split("\n"))
    return out


def _cookies(header: str | None) -> list[dict[str, Any]]:
    pairs = (part.strip().partition("=") for part in (header or "").split(";"))
    return [{"name": n, "value": v, "expires": None, "httpOnly": False, "secure": False} for n, s, v in pairs if s and n]


def _entry(x: _Exchange) -> dict[str, Any]:
    request, response = x.request, x.response
    request_headers = x.wire_request or {str(k): str(v) for k, v in (request.headers or {}).items()}
    lowered = {k.lower(): v for k, v in request_headers.items()}
    post = request_post_data(request)
    entry = new_entry(
        request.method,
        request.url + (request.url_fragment or ""),
        _pairs(request_headers),
        _cookies(lowered.get("cookie")),
        started=x.wall,
        resource_type=x.resource_type.lower(),
        post=None if post is None else (lowered.get("content-type", ""), post),
    )
    if response is not None:
        headers = x.wire_response or {str(k): str(v) for k, v in (response.headers or {}).items()}
        content: dict[str, Any] = {"size": 0, "mimeType": response.mime_type}
        if x.body is not None:
            content["text"], content["size"] = x.body[0], len(x.body[0])
            if x.body[1]:
                content["encoding"] = "base64"
        entry["response"].update(
            status=int(response.status), statusText=response.status_text, httpVersion=response.protocol or "",
            headers=_pairs(headers), content=content,
        )
    if x.frames:
        entry["_webSocketMessages"] = x.frames
    return entry
