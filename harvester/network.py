"""What a page really sent and received, from CDP Network events of its tab.

- The headers of the main frame's document requests to the site's host, as sent on the wire
  (`Network.requestWillBeSentExtraInfo`, falling back to `requestWillBeSent`): the user agent and
  client hints are recorded from them, never guessed.
- The HTTP status of the main frame's documents, and whether their loading failed.
- The JSON bodies of the responses a recipe sniffs (`Network.getResponseBody`).
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .recipe import Recipe, Sniff

BUFFER = 8 * 1024 * 1024  # bytes of response bodies the tab keeps for us


@dataclass
class SniffResult:
    """A sniffed response: its status and, for a 2xx JSON body, the decoded body."""

    sniff: Sniff
    status: int
    data: Any = None
    body_ok: bool = False


@dataclass
class Document:
    """A main-frame document request and what came of it."""

    url: str
    headers: dict[str, str]
    status: int | None = None
    failed: str | None = None


def request_post_data(request: Any) -> str | None:
    """The body a CDP request carries (inline, or in its post-data entries), as text."""
    if request.post_data is not None:
        return str(request.post_data)
    entries = request.post_data_entries or []
    with contextlib.suppress(ValueError, TypeError):
        return b"".join(base64.b64decode(e.bytes_ or "") for e in entries).decode("utf-8", "replace")
    return None


class NetworkLog:
    """Listens to one tab's Network events for one recipe."""

    def __init__(self, tab: Any, recipe: Recipe) -> None:
        self.tab = tab
        self.recipe = recipe
        self.documents: dict[str, Document] = {}  # request id -> document, in request order
        self.results: list[SniffResult] = []
        self.requested: set[Sniff] = set()
        self._pending: dict[str, tuple[Sniff, int | None]] = {}
        self._wire: dict[str, dict[str, str]] = {}  # request id -> copied headers as sent
        self._tasks: set[asyncio.Task[None]] = set()
        self.errors: list[Exception] = []
        self._frame = str(tab.target.target_id)

    def attach(self) -> Any:
        """Register the handlers; returns the CDP command that turns the events on (to send)."""
        from nodriver import cdp

        handlers = {
            cdp.network.RequestWillBeSent: self._request,
            cdp.network.RequestWillBeSentExtraInfo: self._extra_info,
            cdp.network.ResponseReceived: self._response,
            cdp.network.LoadingFinished: self._finished,
            cdp.network.LoadingFailed: self._failed,
        }
        for event, handler in handlers.items():
            self.tab.add_handler(event, self._guarded(handler))
        return cdp.network.enable(max_total_buffer_size=BUFFER, max_resource_buffer_size=BUFFER)

    async def close(self) -> None:
        """Stop reading bodies still being fetched."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _guarded(self, handler: Callable[[Any], None]) -> Callable[..., None]:
        """A handler that never raises into nodriver (which would call it again): the error is
        kept, and `check()` raises it in the harvest."""

        def handle(event: Any, _tab: Any = None) -> None:
            try:
                handler(event)
            except Exception as exc:  # noqa: BLE001 - whatever it is, the harvest raises it
                self.errors.append(exc)

        return handle

    def check(self) -> None:
        """Raise the first error a handler met."""
        if self.errors:
            raise self.errors[0]

    # -- queries ---------------------------------------------------------------------------------

    def last_document(self) -> Document | None:
        """The newest main-frame document request to the site's host."""
        return next(reversed(self.documents.values()), None)

    def copied_headers(self) -> dict[str, str]:
        """The recipe's headers as the page's last document request sent them (lower-case names)."""
        request_id = next(reversed(self.documents), None)
        if request_id is None:
            return {}
        headers = {**self.documents[request_id].headers, **self._wire.get(request_id, {})}
        return {name: headers[name] for name in self.recipe.copy_headers if name in headers}

    # -- event handlers ----------------------------------------------------------------------------

    def _request(self, event: Any) -> None:
        from nodriver import cdp

        request = event.request
        request_id = str(event.request_id)
        if (
            event.type_ == cdp.network.ResourceType.DOCUMENT
            and str(event.frame_id) == self._frame
            and urlsplit(request.url).hostname == self.recipe.host
        ):
            self.documents.pop(request_id, None)  # a redirect keeps the request id: newest last
            self.documents[request_id] = Document(request.url, self._copied(request.headers))
        sniff = self.recipe.sniff_for(request.url, request.method, request_post_data(request))
        if sniff is not None:
            self.requested.add(sniff)
            self._pending[request_id] = (sniff, None)

    def _copied(self, headers: Any) -> dict[str, str]:
        wanted = self.recipe.copy_headers
        return {k.lower(): str(v) for k, v in (headers or {}).items() if k.lower() in wanted}

    def _extra_info(self, event: Any) -> None:
        # May come before or after requestWillBeSent; these headers, as sent on the wire, win.
        self._wire[str(event.request_id)] = self._copied(event.headers)

    def _response(self, event: Any) -> None:
        request_id = str(event.request_id)
        document = self.documents.get(request_id)
        if document is not None:
            document.status = int(event.response.status)
        if request_id in self._pending:
            self._pending[request_id] = (self._pending[request_id][0], int(event.response.status))

    def _finished(self, event: Any) -> None:
        entry = self._pending.pop(str(event.request_id), None)
        if entry is not None:
            task = asyncio.ensure_future(self._read_body(str(event.request_id), *entry))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _failed(self, event: Any) -> None:
        request_id = str(event.request_id)
        document = self.documents.get(request_id)
        if document is not None and not event.canceled:
            document.failed = str(event.error_text)
        entry = self._pending.pop(request_id, None)
        if entry is not None and not event.canceled:
            self.results.append(SniffResult(entry[0], entry[1] or 0))

    async def _read_body(self, request_id: str, sniff: Sniff, status: int | None) -> None:
        from nodriver import cdp

        result = SniffResult(sniff, status or 0)
        if 200 <= result.status < 300:
            with contextlib.suppress(Exception):  # a body the tab no longer holds: no data
                command = cdp.network.get_response_body(cdp.network.RequestId(request_id))
                body, encoded = await self.tab.send(command)
                text = base64.b64decode(body).decode("utf-8", "replace") if encoded else body
                result.data, result.body_ok = json.loads(text), True
        self.results.append(result)
