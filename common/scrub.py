"""Take the secrets out of a HAR document so that it can be shared, keeping its structure.

Two passes. The first finds secrets where HTTP puts them: cookie values (``Cookie`` and
``Set-Cookie`` headers and the HAR's cookie lists), credentials in ``Authorization`` and other
secret-named headers, secret-named query and form parameters, string values under secret-named
JSON keys in request and response bodies and WebSocket frames, and values that look like keys
wherever they are (``csk-...``, JSON web tokens, ``Bearer ...``). The second replaces every
occurrence of every secret found, in every string of the document (URLs, bodies, frames,
base64-encoded bodies included), by a placeholder such as ``hk-redacted-3-__cf_bm``.

The same value always gets the same placeholder, in one document and across the documents of
one :class:`Scrubber`, so a reader still sees which request sent back which cookie.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["Scrubber", "is_secret_name", "scrub_har"]

_SECRET_KEY = re.compile(
    r"(?i)(api[_-]?key|apikey|demoapikey|token|csrf|xsrf|secret|passw(or)?d|session|credential|"
    r"authorization|cookie|clearance|signature|email|getmydemoapikey)"
)
_NOT_SECRET_KEY = re.compile(r"(?i)(_tokens$|^tokens$|^max_|token_?(count|type|s)$|^expires|sessionid_?len)")
_SECRET_HEADER = re.compile(r"(?i)(authorization|api[-_]?key|token|csrf|xsrf|secret|session|cookie)")
_BENIGN_HEADER = {"sec-websocket-key", "sec-websocket-accept", "sec-websocket-extensions", "sec-websocket-protocol"}
_SHAPES = (
    re.compile(r"csk-[A-Za-z0-9]{16,}"),  # a Cerebras API key
    re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),  # a JSON web token
)
_BEARER = re.compile(r"(?i)\b(?:bearer|basic)\s+([A-Za-z0-9._~+/=-]{8,})")
_MIN_LENGTH = 6  # shorter values under a secret-named key ("", "null", "no") are left as they are
_LABEL = re.compile(r"[^A-Za-z0-9_.-]+")


class Scrubber:
    """Finds secrets and replaces them by stable placeholders (see the module's docstring)."""

    def __init__(self) -> None:
        self._placeholders: dict[str, str] = {}
        self._pattern: re.Pattern[str] | None = None

    @property
    def secrets(self) -> list[str]:
        """Every secret value found so far (for tests that check none is left)."""
        return list(self._placeholders)

    def add(self, value: str, label: str) -> None:
        """Treat `value` as a secret; its placeholder names `label` (a cookie or field name)."""
        if len(value) < _MIN_LENGTH or value in self._placeholders or value.startswith("hk-redacted-"):
            return
        tag = _LABEL.sub("_", label)[:40] or "secret"
        self._placeholders[value] = f"hk-redacted-{len(self._placeholders) + 1}-{tag}"
        self._pattern = None

    def replace(self, text: str) -> str:
        """`text` with every known secret, and anything shaped like a key, replaced."""
        for shape in _SHAPES:
            for found in shape.findall(text):
                self.add(found, "key")
        if not self._placeholders:
            return text
        if self._pattern is None:  # longest first, so a secret containing another goes whole
            ordered = sorted(self._placeholders, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, ordered)))
        return self._pattern.sub(lambda m: self._placeholders[m.group(0)], text)

    # -- the first pass: where secrets are -------------------------------------------------

    def find_in_headers(self, headers: Iterable[dict[str, Any]]) -> None:
        for header in headers:
            name, value = str(header.get("name", "")).lower(), header.get("value")
            if not isinstance(value, str) or name in _BENIGN_HEADER:
                continue
            if name == "cookie":
                for pair in value.split(";"):
                    cookie, _, cookie_value = pair.strip().partition("=")
                    self.add(cookie_value, cookie)
            elif name == "set-cookie":
                for line in value.split("\n"):
                    cookie, _, rest = line.strip().partition("=")
                    self.add(rest.split(";", 1)[0].strip(), cookie)
            elif _SECRET_HEADER.search(name):
                bearer = _BEARER.search(value)
                self.add(bearer.group(1) if bearer else value.strip(), name)

    def find_in_pairs(self, pairs: Iterable[dict[str, Any]], *, all_values: bool = False) -> None:
        """Cookie lists (every value is a secret) or query strings (secret-named ones)."""
        for pair in pairs:
            name, value = str(pair.get("name", "")), pair.get("value")
            if isinstance(value, str) and (all_values or is_secret_name(name)):
                self.add(value, name)

    def find_in_body(self, text: str | None, mime: str = "") -> None:
        if not text:
            return
        for bearer in _BEARER.findall(text):
            self.add(bearer, "authorization")
        try:
            self._find_in_json(json.loads(text), "body")
            return
        except ValueError:
            pass
        if "x-www-form-urlencoded" in mime or re.fullmatch(r"[\w.%+-]+=[^\s]*(&[\w.%+-]+=[^\s]*)*", text):
            for name, value in parse_qsl(text, keep_blank_values=True):
                if is_secret_name(name):
                    self.add(value, name)

    def _find_in_json(self, data: Any, label: str) -> None:
        if isinstance(data, dict):
            for key, value in data.items():
                if isinstance(value, str) and is_secret_name(str(key)):
                    self.add(value, str(key))
                elif isinstance(value, str) and value[:1] in "{[":  # JSON inside JSON (agents frames)
                    self.find_in_body(value)
                else:
                    self._find_in_json(value, str(key))
        elif isinstance(data, list):
            for item in data:
                self._find_in_json(item, label)


def is_secret_name(name: str) -> bool:
    """Whether a field, parameter or JSON key of this name holds a secret."""
    return bool(_SECRET_KEY.search(name)) and not _NOT_SECRET_KEY.search(name)


def scrub_har(document: dict[str, Any], scrubber: Scrubber | None = None) -> dict[str, Any]:
    """A copy of a HAR document (as parsed JSON) with its secrets replaced by placeholders."""
    scrubber = scrubber or Scrubber()
    entries = document.get("log", {}).get("entries", []) if isinstance(document, dict) else []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict):
            _find_in_entry(scrubber, entry)
    return _replace_all(scrubber, document)


def _find_in_entry(scrubber: Scrubber, entry: dict[str, Any]) -> None:
    request, response = entry.get("request") or {}, entry.get("response") or {}
    for part in (request, response):
        scrubber.find_in_headers(_items(part.get("headers")))
        scrubber.find_in_pairs(_items(part.get("cookies")), all_values=True)
    scrubber.find_in_pairs(_items(request.get("queryString")))
    if isinstance(request.get("url"), str):  # DevTools fills queryString, other tools may not
        query = parse_qsl(urlsplit(request["url"]).query, keep_blank_values=True)
        scrubber.find_in_pairs({"name": name, "value": value} for name, value in query)
    post = request.get("postData") or {}
    if isinstance(post, dict):
        scrubber.find_in_body(post.get("text"), str(post.get("mimeType", "")))
        scrubber.find_in_pairs(_items(post.get("params")))
    content = response.get("content") or {}
    if isinstance(content, dict):
        scrubber.find_in_body(_decoded(content), str(content.get("mimeType", "")))
    for message in _items(entry.get("_webSocketMessages")):
        scrubber.find_in_body(message.get("data") if isinstance(message.get("data"), str) else None)


def _replace_all(scrubber: Scrubber, data: Any) -> Any:
    if isinstance(data, dict):
        if data.get("encoding") == "base64" and isinstance(data.get("text"), str):  # a response body
            text = _decoded(data)
            if text is not None:
                raw = scrubber.replace(text).encode()
                return {**{k: _replace_all(scrubber, v) for k, v in data.items()}, "text": base64.b64encode(raw).decode()}
        return {key: _replace_all(scrubber, value) for key, value in data.items()}
    if isinstance(data, list):
        return [_replace_all(scrubber, item) for item in data]
    if isinstance(data, str):
        return scrubber.replace(data)
    return data


def _items(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _decoded(content: dict[str, Any]) -> str | None:
    text = content.get("text")
    if not isinstance(text, str):
        return None
    if content.get("encoding") != "base64":
        return text
    try:
        return base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
