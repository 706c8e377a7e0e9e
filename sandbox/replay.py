"""Replay: the sandbox answers with a recording's responses instead of its replicas.

`harvestkit sandbox --replay trace.har` (or ``Sandbox(replay="trace.har")``) serves, for each
request, the recorded response of the same request: same method, host, path and query, and body,
all normalised so that what a recording cannot hold equal does not count (values of secret-named
fields and parameters, which a scrubbed recording holds as placeholders; JSON key order; the
bodies of Cloudflare's challenge platform, which are new proofs on every run; ids made anew on
every run in paths and query values, such as a chat room's name). Recorded
requests are consumed in order, so a request made twice gets its two answers; once they are used
up, the last one answers again. A request that was not recorded gets a 404, and the sandbox log
says which request it was.

A streamed body recorded with its read boundaries (``_chunks``: offset in seconds and text) is
written back piece by piece, with the recorded timing when ``paced``; a WebSocket answers each
message the client sends with the messages that followed it in the recording, the ids the client
made anew (where its message differs from the recorded one) put in place of the recorded ones.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from aiohttp import WSMsgType, web

from harvestkit.common.har import HarEntry, WebSocketMessage
from harvestkit.common.scrub import is_secret_name

from .state import LoggedRequest, SandboxState

__all__ = ["Replay", "request_key"]

_HOP_HEADERS = {"content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive"}
Key = tuple[str, str, str, str]
CHALLENGE_PLATFORM = "/cdn-cgi/"


def _blank(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: "*" if is_secret_name(str(k)) else _blank(v) for k, v in sorted(data.items())}
    if isinstance(data, list):
        return [_blank(item) for item in data]
    if isinstance(data, str):
        return "*" if data.startswith("hk-redacted-") else _ids(data)
    return data


_RUN_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{12,}", re.I)


def _ids(text: str) -> str:
    """`text` with ids made anew on every run (UUIDs, long hex runs: a chat room's name) as '*'."""
    return _RUN_ID.sub("*", text)


def _query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode(sorted((k, "*" if is_secret_name(k) else _ids(v)) for k, v in pairs))


def normalised_body(body: str | None) -> str:
    """A request body with what a recording cannot hold equal taken out."""
    if not body:
        return ""
    try:
        return json.dumps(_blank(json.loads(body)), sort_keys=True)
    except ValueError:
        pass
    if "=" in body and " " not in body:
        return _query(body)
    return body


def request_key(method: str, url: str, body: str | None) -> Key:
    """What a replayed request must match: (method, host, path?query, body), normalised. The
    bodies of Cloudflare's challenge platform (``/cdn-cgi/``) carry proofs made anew on every run
    (nonces, encrypted fingerprints), so those requests match by path alone."""
    parts = urlsplit(url)
    path = _ids(parts.path or "/")
    if parts.query:
        path += "?" + _query(parts.query)
    body_key = "" if path.startswith(CHALLENGE_PLATFORM) else normalised_body(body)
    return method.upper(), (parts.hostname or "").lower(), path, body_key


class Replay:
    """One recording, served as an aiohttp application (catch-all, every replica host)."""

    def __init__(self, entries: list[HarEntry], state: SandboxState, *, paced: bool = False) -> None:
        self.state = state
        self.paced = paced
        self._queues: dict[Key, list[HarEntry]] = defaultdict(list)
        for entry in entries:
            if entry.status:  # an entry without a response (aborted) cannot be replayed
                self._queues[request_key(entry.method, _http_url(entry.url), entry.post_data)].append(entry)
        self._served: dict[Key, int] = defaultdict(int)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    def _take(self, key: Key) -> HarEntry | None:
        queue = self._queues.get(key)
        if not queue:
            return None
        index = min(self._served[key], len(queue) - 1)
        self._served[key] += 1
        return queue[index]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        host = (request.host or "").rsplit(":", 1)[0].lower()
        body = (await request.text()) if request.can_read_body else None
        key = request_key(request.method, f"https://{host}{request.path_qs}", body)
        logged = LoggedRequest(time.time(), None, host, request.method, request.path_qs, dict(request.headers),
                               dict(request.cookies), None, route="replay")
        self.state.requests.append(logged)
        entry = self._take(key)
        if entry is None:
            logged.status, logged.note = 404, f"not in the recording: {request.method} {host}{request.path}"
            return web.Response(status=404, text=f"harvestkit replay: {logged.note}\n")
        logged.status = entry.status
        if entry.websocket or request.headers.get("upgrade", "").lower() == "websocket":
            return await self._socket(request, entry)
        return await self._http(request, entry)

    async def _http(self, request: web.Request, entry: HarEntry) -> web.StreamResponse:
        response = web.StreamResponse(status=entry.status)
        for name, value in entry.response_headers:
            if name not in _HOP_HEADERS and not name.startswith(":"):
                response.headers.add(name, value)
        await response.prepare(request)
        chunks = entry.chunks or ([(0.0, entry.body)] if entry.body else [])
        started = time.monotonic()
        for offset, text in chunks:
            if self.paced:
                await asyncio.sleep(max(0.0, offset - (time.monotonic() - started)))
            await response.write(text.encode())
        await response.write_eof()
        return response

    async def _socket(self, request: web.Request, entry: HarEntry) -> web.StreamResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        first, *turns = _turns(entry.websocket)
        for reply in first[1]:  # what the server sent before the client said anything
            await socket.send_str(reply.data)
        async for message in socket:
            if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY) or not turns:
                continue
            sent, replies = turns.pop(0)
            live = message.data if isinstance(message.data, str) else message.data.decode("utf-8", "replace")
            echoed = _echoes(sent.data if sent else "", live)
            for reply in replies:
                await socket.send_str(_substitute(reply.data, echoed))
        return socket


Turn = tuple[WebSocketMessage | None, list[WebSocketMessage]]


def _turns(messages: list[WebSocketMessage]) -> list[Turn]:
    """The received messages before the first sent one, then each sent one with those that
    followed it."""
    turns: list[Turn] = [(None, [])]
    for message in messages:
        if message.type == "send":
            turns.append((message, []))
        else:
            turns[-1][1].append(message)
    return turns


def _echoes(recorded: str, live: str) -> dict[str, str]:
    """The strings a client made anew (request ids...): recorded value -> live value, for the
    fields where the recorded message and the live one differ."""
    try:
        pairs = list(_differing(json.loads(recorded), json.loads(live)))
    except ValueError:
        return {}
    return {old: new for old, new in pairs if 4 <= len(old) <= 200}


def _differing(recorded: Any, live: Any) -> Iterator[tuple[str, str]]:
    if isinstance(recorded, dict) and isinstance(live, dict):
        for key in recorded.keys() & live.keys():
            yield from _differing(recorded[key], live[key])
    elif isinstance(recorded, list) and isinstance(live, list):
        for a, b in zip(recorded, live):
            yield from _differing(a, b)
    elif isinstance(recorded, str) and isinstance(live, str) and recorded != live:
        if recorded[:1] in "{[" and live[:1] in "{[":  # JSON inside JSON (an agents request's body)
            try:
                yield from _differing(json.loads(recorded), json.loads(live))
                return
            except ValueError:
                pass
        yield recorded, live


def _substitute(text: str, echoed: dict[str, str]) -> str:
    """A recorded reply with the ids it echoes replaced by the live request's."""
    for old, new in echoed.items():
        text = text.replace(old, new)
    return text


def _http_url(url: str) -> str:
    return "https://" + url.split("://", 1)[1] if url.startswith(("wss://", "ws://", "http://")) else url
