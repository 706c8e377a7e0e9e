"""A session from a browser's HAR file: what a harvest would have captured, read from a recording.

The site's recipe says what to take, as it does for a live harvest: its cookie domains, the
headers to copy, and the sniffed responses that hold the demo key. From the entries of the site's
hosts it takes
- the cookies: the last ``Set-Cookie`` per cookie wins; a cookie the recording only shows in a
  request's ``Cookie`` header comes from there (host-only, for that host);
- the user agent, client hints and ``Accept-Language`` of the last request that carried them;
- the captures of the recipe's sniffs (the Cerebras demo key from ``/api/auth/session`` or the
  GraphQL ``GetMyDemoApiKey`` response), else a key the recording sent as ``Authorization: Bearer``
  to one of the site's hosts (a recording of API calls).

Entries of other hosts are ignored and counted. Nothing here starts a browser.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from harvestkit.cache import Cookie, CookieFormatError, SessionRecord, domain_match, parse_set_cookie
from harvestkit.cache.limits import Screened, screen_cookies
from harvestkit.cache.record import session_expires_at
from harvestkit.common.har import HarEntry, HarFormatError

from .engine import epoch_time
from .recipe import HINT_HEADERS, Recipe, json_path

__all__ = ["HarSession", "session_from_har"]


@dataclass
class HarSession:
    """What a HAR gave for one site: the record, and counts for the user."""

    record: SessionRecord
    used: int  # entries of the site's hosts
    ignored: int  # entries of other hosts
    captured: list[str] = field(default_factory=list)  # names of the sniff captures found
    refused: str = ""  # the cookies refused by the import limits, summarised (empty: none)


def _site_entry(recipe: Recipe, entry: HarEntry) -> bool:
    host = entry.host
    return any(domain_match(host, domain) for domain in recipe.cookie_domains) or host in recipe.hosts


def session_from_har(entries: list[HarEntry], recipe: Recipe, profile: str, *, now: float | None = None) -> HarSession:
    """The session `entries` hold for `recipe`'s site; HarFormatError when they hold none."""
    now = time.time() if now is None else now
    mine = [e for e in entries if _site_entry(recipe, e)]
    if not mine:
        raise HarFormatError(
            f"the HAR has no request to {recipe.host} ({len(entries)} entries of other sites): record it "
            f"while {recipe.start_url} loads"
        )
    screened = _cookies(recipe, mine, now)  # the same domain, suffix and size checks as any import
    cookies = screened.kept
    headers = _copied_headers(recipe, mine)
    captures = _captures(recipe, mine)
    if not captures.get("api_key"):  # a recording of API calls: the key as the page sent it
        bearer = next((b for e in reversed(mine) if (b := _bearer(e))), None)
        if bearer:
            captures["api_key"] = bearer
    if not cookies and not captures.get("api_key"):  # a key alone is a session (Cerebras' API)
        raise HarFormatError(
            f"the HAR's {len(mine)} requests to {recipe.host} hold no cookies: DevTools' 'Export HAR "
            "(sanitized)' leaves them out; save it with 'Export HAR (with sensitive data)'"
        )
    names = {c.name for c in cookies}
    essential = [n for n in recipe.essential_cookies if n in names]
    key_expires = epoch_time(captures.get("api_key_expires_at"))
    user_agent = headers.pop("user-agent", None)
    hints = {name: headers.pop(name) for name in HINT_HEADERS if name in headers}
    extra: dict[str, Any] = {"url": recipe.start_url, "essential_cookies": essential}
    if headers:
        extra["headers"] = headers
    extra.update({k: v for k, v in captures.items() if k not in ("api_key", "api_key_expires_at")})
    record = SessionRecord(
        site=recipe.name,
        profile=profile,
        harvested_at=now,
        expires_at=session_expires_at(cookies, essential, key_expires),
        user_agent=user_agent,
        client_hints=hints,
        cookies=cookies,
        api_key=captures.get("api_key"),
        api_key_expires_at=key_expires,
        source="import",
        extra=extra,
    )
    return HarSession(record, used=len(mine), ignored=len(entries) - len(mine), captured=sorted(captures),
                      refused=screened.summary() if screened.refused else "")


def _cookies(recipe: Recipe, entries: list[HarEntry], now: float) -> Screened:
    by_name: dict[tuple[str, str, str], Cookie] = {}
    sent: dict[str, Cookie] = {}
    for entry in entries:
        for name, value in entry.request_cookies or _cookie_header(entry):
            try:
                sent[name] = Cookie(name=name, value=value, domain=entry.host, secure=True, host_only=True)
            except ValueError:
                continue
        for header in entry.set_cookies:  # in recording order: the last one wins
            try:
                cookie = parse_set_cookie(header, entry.url, now=now)
            except CookieFormatError:
                continue
            by_name[cookie.key] = cookie
    names = {key[0] for key in by_name}
    found = [c for c in by_name.values() if not c.is_expired(now)]
    found.extend(c for name, c in sent.items() if name not in names)
    return screen_cookies(found, recipe.cookie_domains)


def _bearer(entry: HarEntry) -> str | None:
    scheme, _, token = (entry.request_header("authorization") or "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _cookie_header(entry: HarEntry) -> list[tuple[str, str]]:
    header = entry.request_header("cookie") or ""
    pairs = (part.strip().partition("=") for part in header.split(";"))
    return [(name, value) for name, sep, value in pairs if sep and name]


def _copied_headers(recipe: Recipe, entries: list[HarEntry]) -> dict[str, str]:
    copied: dict[str, str] = {}
    for entry in entries:
        for name in recipe.copy_headers:
            value = entry.request_header(name)
            if value:
                copied[name] = value
    return copied


def _captures(recipe: Recipe, entries: list[HarEntry]) -> dict[str, Any]:
    captures: dict[str, Any] = {}
    for entry in entries:
        sniff = recipe.sniff_for(entry.url, entry.method, entry.post_data)
        if sniff is None or not 200 <= entry.status < 300:
            continue
        data = entry.json_body()
        for name, path in sniff.captures.items():
            value = json_path(data, path)
            if value not in (None, ""):
                captures[name] = value
    return captures
