"""HAR 1.2 files (HTTP Archive), as Chrome's and Firefox's DevTools save them: read into typed
entries, with limits and typed errors.

Only what harvestkit uses is kept: each entry's request (method, URL, headers, cookies, body),
response (status, headers, cookies, body, decoded from base64 when DevTools encoded it) and
WebSocket messages (Chrome's ``_webSocketMessages``). A file that is not JSON, is cut short, or is
JSON of another shape is a :class:`HarFormatError` saying which; a file over ``MAX_HAR_BYTES`` is
refused before it is read whole. Messages name fields and entry indexes, never values.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from harvestkit.cache.errors import HarvestkitError

__all__ = [
    "MAX_HAR_BYTES",
    "HarEntry",
    "HarFormatError",
    "HarTooLarge",
    "WebSocketMessage",
    "entries_of",
    "load_document",
    "load_har",
    "new_entry",
    "parse_document",
    "read_har",
]

MAX_HAR_BYTES = 100 * 1024 * 1024  # DevTools' HARs of a long session reach tens of MB


class HarFormatError(HarvestkitError, ValueError):
    """The input is not a HAR file harvestkit can read."""


class HarTooLarge(HarFormatError):
    """The HAR file is larger than the limit (refused before it is read whole)."""

    def __init__(self, size: int, limit: int, where: str) -> None:
        self.size, self.limit = size, limit
        super().__init__(
            f"{where} is {size / 1e6:.0f} MB, over the {limit / 1e6:.0f} MB limit for a HAR: save a shorter "
            "recording (clear the Network panel, then reload the site and sign in)"
        )


@dataclass(frozen=True)
class WebSocketMessage:
    """One frame of a WebSocket recorded in the HAR (Chrome's ``_webSocketMessages``)."""

    type: str  # "send" or "receive"
    time: float
    opcode: int
    data: str


@dataclass
class HarEntry:
    """One request and its response. Header names are lower-cased; repeated headers are kept in
    order (``set-cookie`` values that DevTools joined with newlines are split)."""

    index: int
    method: str
    url: str
    request_headers: list[tuple[str, str]] = field(default_factory=list)
    request_cookies: list[tuple[str, str]] = field(default_factory=list)
    post_data: str | None = None
    status: int = 0
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    body: str | None = None  # the response body as text, None when DevTools did not keep it
    started: str = ""
    websocket: list[WebSocketMessage] = field(default_factory=list)
    chunks: list[tuple[float, str]] = field(default_factory=list)  # harvestkit's `_chunks`: read boundaries

    @property
    def host(self) -> str:
        return (urlsplit(self.url).hostname or "").lower()

    @property
    def path(self) -> str:
        return urlsplit(self.url).path or "/"

    def request_header(self, name: str) -> str | None:
        """The last value of a request header (name in any case), or None."""
        name = name.lower()
        return next((v for n, v in reversed(self.request_headers) if n == name), None)

    def response_header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for n, v in reversed(self.response_headers) if n == name), None)

    @property
    def set_cookies(self) -> list[str]:
        return [v for n, v in self.response_headers if n == "set-cookie"]

    def json_body(self) -> Any:
        """The response body decoded as JSON, or None when it is absent or not JSON."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def new_entry(
    method: str,
    url: str,
    headers: list[dict[str, str]],
    cookies: list[dict[str, Any]],
    *,
    started: float,
    resource_type: str,
    post: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """A HAR 1.2 entry in the shape DevTools writes, its response still empty (status 0).
    `started` is an epoch time; `post` is (MIME type, text) of the request body."""
    stamp = datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="milliseconds")
    entry: dict[str, Any] = {
        "_resourceType": resource_type,
        "cache": {},
        "startedDateTime": stamp.replace("+00:00", "Z"),
        "time": 0,
        "request": {"method": method, "url": url, "httpVersion": "", "headers": headers, "queryString": [],
                    "cookies": cookies, "headersSize": -1, "bodySize": len(post[1]) if post else 0},
        "response": {"status": 0, "statusText": "", "httpVersion": "", "headers": [], "cookies": [],
                     "content": {"size": 0, "mimeType": "x-unknown"}, "redirectURL": "", "headersSize": -1,
                     "bodySize": -1},
        "timings": {"send": 0, "wait": 0, "receive": 0},
    }
    if post is not None:
        entry["request"]["postData"] = {"mimeType": post[0], "text": post[1]}
    return entry


def load_document(source: str | os.PathLike[str] | IO[bytes], *, limit: int = MAX_HAR_BYTES) -> dict[str, Any]:
    """A HAR file (a path, or a binary stream such as stdin) as parsed JSON, size-checked before it
    is read whole and checked to be a HAR (typed errors as :func:`parse_document`)."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        size = path.stat().st_size
        if size > limit:
            raise HarTooLarge(size, limit, str(path))
        with path.open("rb") as stream:
            data = stream.read(limit + 1)
        where = str(path)
    else:
        data, where = source.read(limit + 1), "the input"
    if len(data) > limit:
        raise HarTooLarge(len(data), limit, where)
    return parse_document(data)


def load_har(source: str | os.PathLike[str] | IO[bytes], *, limit: int = MAX_HAR_BYTES) -> list[HarEntry]:
    """The entries of a HAR file (a path, or a binary stream such as stdin), size-checked first."""
    return entries_of(load_document(source, limit=limit))


def parse_document(data: bytes | str) -> dict[str, Any]:
    """A HAR document given as bytes or text, parsed; :class:`HarFormatError` if it is not one."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise HarFormatError(f"not a HAR file: not UTF-8 text (byte {exc.start})") from None
    if not data.strip():
        raise HarFormatError("not a HAR file: it is empty")
    try:
        document = json.loads(data)
    except json.JSONDecodeError as exc:
        cut = exc.pos >= len(data.rstrip()) - 1
        why = "it ends early (truncated?)" if cut else f"invalid JSON at line {exc.lineno}, column {exc.colno}"
        raise HarFormatError(f"not a HAR file: {why}") from None
    log = document.get("log") if isinstance(document, dict) else None
    if not isinstance(log, dict) or not isinstance(log.get("entries"), list):
        raise HarFormatError("not a HAR file: no log.entries list (save it from the Network panel: 'Export HAR')")
    return document


def entries_of(document: dict[str, Any]) -> list[HarEntry]:
    """The typed entries of a parsed HAR document (from :func:`parse_document`)."""
    return [_entry(index, item) for index, item in enumerate(document["log"]["entries"])]


def read_har(data: bytes | str) -> list[HarEntry]:
    """The entries of a HAR document given as bytes or text."""
    return entries_of(parse_document(data))


def _entry(index: int, item: Any) -> HarEntry:
    def fail(what: str) -> HarFormatError:
        return HarFormatError(f"HAR entry {index}: {what}")

    if not isinstance(item, dict):
        raise fail("not an object")
    request, response = item.get("request"), item.get("response")
    if not isinstance(request, dict) or not isinstance(response, dict):
        raise fail("no request or response object")
    method, url = request.get("method"), request.get("url")
    if not isinstance(method, str) or not isinstance(url, str):
        raise fail("request.method and request.url must be strings")
    status = response.get("status", 0)
    if not isinstance(status, int) or isinstance(status, bool):
        raise fail("response.status must be a number")
    post = request.get("postData")
    return HarEntry(
        index=index,
        method=method.upper(),
        url=url,
        request_headers=list(_headers(request.get("headers"), fail, "request.headers")),
        request_cookies=[(n, v) for n, v in _pairs(request.get("cookies"), fail, "request.cookies")],
        post_data=post.get("text") if isinstance(post, dict) and isinstance(post.get("text"), str) else None,
        status=status,
        response_headers=list(_headers(response.get("headers"), fail, "response.headers")),
        body=_content(response.get("content"), fail),
        started=item.get("startedDateTime") if isinstance(item.get("startedDateTime"), str) else "",
        websocket=list(_messages(item.get("_webSocketMessages"), fail)),
        chunks=list(_chunks(item.get("_chunks"), fail)),
    )


def _pairs(items: Any, fail: Any, where: str) -> Iterator[tuple[str, str]]:
    if items is None:
        return
    if not isinstance(items, list):
        raise fail(f"{where} must be a list")
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise fail(f"{where} holds an item without a name")
        value = item.get("value", "")
        yield item["name"], value if isinstance(value, str) else str(value)


def _headers(items: Any, fail: Any, where: str) -> Iterator[tuple[str, str]]:
    for name, value in _pairs(items, fail, where):
        name = name.lower()
        if name == "set-cookie":  # DevTools may join several Set-Cookie headers with newlines
            yield from ((name, line) for line in value.split("\n") if line.strip())
        else:
            yield name, value


def _content(content: Any, fail: Any) -> str | None:
    if not isinstance(content, dict) or not isinstance(content.get("text"), str):
        return None
    text = content["text"]
    if content.get("encoding") == "base64":
        try:
            return base64.b64decode(text, validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            raise fail("response.content.text is marked base64 but is not") from None
    return text


def _messages(items: Any, fail: Any) -> Iterator[WebSocketMessage]:
    if not isinstance(items, list):
        return
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("data"), str):
            raise fail("_webSocketMessages holds a message without data")
        yield WebSocketMessage(
            type=str(item.get("type", "")),
            time=float(item.get("time") or 0.0),
            opcode=int(item.get("opcode") or 1),
            data=item["data"],
        )


def _chunks(items: Any, fail: Any) -> Iterator[tuple[float, str]]:
    """harvestkit's own field: a streamed body as it was read, [{"offset": seconds, "text": ...}]."""
    if not isinstance(items, list):
        return
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise fail("_chunks holds a piece without text")
        yield float(item.get("offset") or 0.0), item["text"]
