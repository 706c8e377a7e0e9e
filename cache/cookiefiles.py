"""Cookie import and export: Netscape cookies.txt, browser-extension JSON, and CDP cookies.

- "netscape": the cookies.txt of curl/wget/yt-dlp: 7 tab-separated fields (domain,
  include-subdomains, path, secure, expires, name, value), `#HttpOnly_` before the domain
  of an HttpOnly cookie, expires 0 for a session cookie. A leading dot on the domain goes
  with include-subdomains TRUE. SameSite cannot be expressed there and is lost on export.
- "extension": the JSON array that EditThisCookie / Cookie-Editor export (domain,
  expirationDate, hostOnly, httpOnly, name, path, sameSite, secure, session, storeId, value).
- "cdp": Chrome DevTools Protocol cookies as `Network.getCookies` returns them (expires -1
  for a session cookie; a leading dot on the domain for a domain cookie).

Every parse error is a `CookieFormatError` with the line number (and the cookie's index
for JSON), never a raw exception; messages name fields, never values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from . import schema
from .cookie import Cookie
from .errors import CacheCorruptError, CookieFormatError

FORMATS = ("netscape", "extension", "cdp")
_HTTP_ONLY = "#HttpOnly_"
_BOOLS = {"TRUE": True, "FALSE": False}
_EXT_SAME_SITE = {"no_restriction": "None", "lax": "Lax", "strict": "Strict", "unspecified": None, None: None}
_EXT_SAME_SITE_OUT = {v: k for k, v in _EXT_SAME_SITE.items() if k is not None}
_CDP_SAME_SITE = {"Strict": "Strict", "Lax": "Lax", "None": "None", None: None}
_EXTENSION_KEYS = {"hostOnly", "expirationDate", "storeId"}
_WS = re.compile(r"\s*")


def _domain_out(cookie: Cookie) -> str:
    return cookie.domain if cookie.host_only else "." + cookie.domain


# -- Netscape cookies.txt ----------------------------------------------------------------------


def _netscape_line(line: str, lineno: int) -> Cookie:
    def fail(message: str) -> CookieFormatError:
        return CookieFormatError(message, line=lineno, fmt="netscape")

    http_only = line.startswith(_HTTP_ONLY)
    fields = line[len(_HTTP_ONLY) if http_only else 0 :].split("\t", 6)
    if len(fields) != 7:
        raise fail(f"expected 7 tab-separated fields, found {len(fields)}")
    domain, subdomains, path, secure, expires, name, value = fields
    if subdomains.upper() not in _BOOLS or secure.upper() not in _BOOLS:
        raise fail("the include-subdomains and secure fields must be TRUE or FALSE")
    include_subdomains = _BOOLS[subdomains.upper()]
    if domain.startswith(".") and not include_subdomains:
        raise fail("the domain starts with '.' but include-subdomains is FALSE")
    try:
        expiry = float(expires) if expires.strip() else 0.0  # Python's MozillaCookieJar writes ""
    except ValueError:
        raise fail("the expires field must be a number (0 or empty for a session cookie)") from None
    try:
        return Cookie(
            name=name,
            value=value,
            domain=domain,
            path=path,
            expires=expiry if expiry > 0 else None,
            secure=_BOOLS[secure.upper()],
            http_only=http_only,
            host_only=not include_subdomains,
        )
    except ValueError as exc:
        raise fail(str(exc)) from None


def parse_netscape_cookies(text: str) -> list[Cookie]:
    """The cookies of a Netscape cookies.txt file; comments and blank lines are skipped."""
    cookies = []
    for lineno, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if line.startswith(_HTTP_ONLY) or (line.strip() and not line.lstrip().startswith("#")):
            cookies.append(_netscape_line(line, lineno))
    return cookies


def dump_netscape_cookies(cookies: Iterable[Cookie]) -> str:
    """A Netscape cookies.txt file; expiry is truncated to whole seconds, session cookies get 0."""
    lines = ["# Netscape HTTP Cookie File", "# Written by harvestkit: it holds secrets, keep it private.", ""]
    for c in cookies:
        prefix = _HTTP_ONLY if c.http_only else ""
        flags = ["FALSE" if c.host_only else "TRUE", c.path, "TRUE" if c.secure else "FALSE"]
        expires = str(int(c.expires)) if c.expires is not None else "0"
        lines.append("\t".join([prefix + _domain_out(c), *flags, expires, c.name, c.value]))
    return "\n".join(lines) + "\n"


# -- JSON formats ----------------------------------------------------------------------------


def _json_items(data: str | Any, fmt: str) -> list[tuple[int | None, Any]]:
    """(line, item) for each element of a JSON array of cookies ({"cookies": [...]} too)."""
    if not isinstance(data, str):
        doc, text = data, None
    else:
        text = data.lstrip("\ufeff")
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CookieFormatError(f"invalid JSON ({exc.msg})", line=exc.lineno, fmt=fmt) from None
        except RecursionError:
            raise CookieFormatError("JSON nested too deeply", fmt=fmt) from None
    if isinstance(doc, Mapping) and isinstance(doc.get("cookies"), list):
        return [(None, item) for item in doc["cookies"]]
    if not isinstance(doc, list):
        raise CookieFormatError("expected a JSON array of cookies", line=1 if text else None, fmt=fmt)
    if text is None:
        return [(None, item) for item in doc]
    decoder, lines = json.JSONDecoder(), []
    pos, line = text.index("[") + 1, 1
    for _ in doc:
        start = _WS.match(text, pos).end()
        line += text.count("\n", pos, start)
        lines.append(line)
        _, end = decoder.raw_decode(text, start)
        line += text.count("\n", start, end)
        pos = _WS.match(text, end).end() + 1  # past the comma
        line += text.count("\n", end, pos)
    return list(zip(lines, doc, strict=False))


def _parse_json(data: str | Any, fmt: str, convert: Callable[[Mapping[str, Any]], Cookie]) -> list[Cookie]:
    cookies = []
    for index, (line, item) in enumerate(_json_items(data, fmt)):
        try:
            cookies.append(convert(schema.as_mapping(item, "the cookie")))
        except ValueError as exc:  # CacheCorruptError from the field checks, or Cookie's own
            message = str(exc) if isinstance(exc, CacheCorruptError) else f"invalid cookie: {exc}"
            raise CookieFormatError(f"cookie #{index + 1}: {message}", line=line, fmt=fmt) from None
    return cookies


def _choice(table: Mapping[Any, str | None], value: Any, field: str) -> str | None:
    if not isinstance(value, (str, type(None))) or value not in table:
        allowed = ", ".join(repr(k) for k in table if k is not None)
        raise CacheCorruptError(f"field {field} must be one of {allowed}")
    return table[value]


def _json_cookie(item: Mapping[str, Any], *, expires: float | None, same_site: str | None, host_only: bool) -> Cookie:
    """A cookie from the keys both JSON formats share (name, value, domain, path, secure, httpOnly)."""
    return Cookie(
        name=schema.as_str(item, "name"),
        value=schema.as_str(item, "value"),
        domain=schema.as_str(item, "domain"),
        path=schema.as_str(item, "path"),
        expires=expires,
        secure=schema.as_bool(item, "secure"),
        http_only=schema.as_bool(item, "httpOnly"),
        same_site=same_site,
        host_only=host_only,
    )


def _extension_cookie(item: Mapping[str, Any]) -> Cookie:
    domain = schema.as_str(item, "domain")
    defaults = {"path": "/", "secure": False, "httpOnly": False, "sameSite": None, "expirationDate": None}
    item = {**defaults, "hostOnly": not domain.startswith("."), **item}
    item.setdefault("session", item["expirationDate"] is None)
    session = schema.as_bool(item, "session")
    return _json_cookie(
        item,
        expires=None if session else schema.as_float(item, "expirationDate"),
        same_site=_choice(_EXT_SAME_SITE, item["sameSite"], "sameSite"),
        host_only=schema.as_bool(item, "hostOnly"),
    )


def _cdp_cookie(item: Mapping[str, Any]) -> Cookie:
    domain = schema.as_str(item, "domain")
    item = {"path": "/", "expires": -1, "secure": False, "httpOnly": False, "sameSite": None, **item}
    expires = schema.as_float(item, "expires")
    item.setdefault("session", expires < 0)
    session = schema.as_bool(item, "session")
    return _json_cookie(
        item,
        expires=None if session or expires < 0 else expires,
        same_site=_choice(_CDP_SAME_SITE, item["sameSite"], "sameSite"),
        host_only=not domain.startswith("."),
    )


def parse_extension_cookies(text: str) -> list[Cookie]:
    """The cookies of an EditThisCookie / Cookie-Editor JSON export."""
    return _parse_json(text, "extension", _extension_cookie)


def parse_cdp_cookies(data: str | list | Mapping[str, Any]) -> list[Cookie]:
    """CDP cookies: JSON text, or the already-decoded list (or {"cookies": [...]} result)."""
    return _parse_json(data, "cdp", _cdp_cookie)


def dump_extension_cookies(cookies: Iterable[Cookie]) -> str:
    """A JSON array in the EditThisCookie / Cookie-Editor shape."""
    items = []
    for index, c in enumerate(cookies, 1):
        item: dict[str, Any] = {"domain": _domain_out(c)}
        if c.expires is not None:
            item["expirationDate"] = c.expires
        item.update(
            hostOnly=c.host_only,
            httpOnly=c.http_only,
            name=c.name,
            path=c.path,
            sameSite=_EXT_SAME_SITE_OUT[c.same_site],
            secure=c.secure,
            session=c.expires is None,
            storeId="0",
            value=c.value,
            id=index,
        )
        items.append(item)
    return json.dumps(items, indent=4) + "\n"


def dump_cdp_cookies(cookies: Iterable[Cookie]) -> list[dict[str, Any]]:
    """Cookies in the `Network.getCookies` shape (a list of dicts; `json.dumps` it for a file)."""
    items = []
    for c in cookies:
        item: dict[str, Any] = {
            "name": c.name,
            "value": c.value,
            "domain": _domain_out(c),
            "path": c.path,
            "expires": c.expires if c.expires is not None else -1,
            "size": len(c.name) + len(c.value),
            "httpOnly": c.http_only,
            "secure": c.secure,
            "session": c.expires is None,
            "priority": "Medium",
            "sameParty": False,
            "sourceScheme": "Secure" if c.secure else "NonSecure",
            "sourcePort": 443 if c.secure else 80,
        }
        if c.same_site is not None:
            item["sameSite"] = c.same_site
        items.append(item)
    return items


# -- any format ---------------------------------------------------------------------------------


def detect_cookie_format(text: str) -> str:
    """The format of `text`: "extension" or "cdp" for JSON (told by the keys), else "netscape"."""
    stripped = text.lstrip("\ufeff \t\r\n")
    if not stripped.startswith(("[", "{")):
        return "netscape"
    try:
        items = [item for _, item in _json_items(text, "json")]
    except CookieFormatError:
        return "extension"  # let the parser report the JSON error with its line
    if any(isinstance(item, Mapping) and _EXTENSION_KEYS & item.keys() for item in items):
        return "extension"
    return "cdp"


_PARSERS: dict[str, Callable[[str], list[Cookie]]] = {
    "netscape": parse_netscape_cookies,
    "extension": parse_extension_cookies,
    "cdp": parse_cdp_cookies,
}


def parse_cookies(text: str, fmt: str | None = None) -> list[Cookie]:
    """Cookies from `text` in `fmt` (one of FORMATS), detected when None."""
    fmt = fmt or detect_cookie_format(text)
    if fmt not in _PARSERS:
        raise ValueError(f"unknown cookie format {fmt!r}: use one of {FORMATS}")
    return _PARSERS[fmt](text)


def dump_cookies(cookies: Iterable[Cookie], fmt: str) -> str:
    """`cookies` as the text of a file in `fmt` (one of FORMATS)."""
    if fmt == "netscape":
        return dump_netscape_cookies(cookies)
    if fmt == "extension":
        return dump_extension_cookies(cookies)
    if fmt == "cdp":
        return json.dumps(dump_cdp_cookies(cookies), indent=4) + "\n"
    raise ValueError(f"unknown cookie format {fmt!r}: use one of {FORMATS}")
