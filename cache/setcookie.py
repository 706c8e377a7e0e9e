"""Parse `Set-Cookie` response headers into `Cookie` records (RFC 6265 section 5.2)."""

from __future__ import annotations

import calendar
import logging
import re
import time
from collections.abc import Iterable
from datetime import datetime
from urllib.parse import urlsplit

from .cookie import SAME_SITE_VALUES, Cookie, default_path, domain_match, normalize_host
from .errors import CookieFormatError

log = logging.getLogger(__name__)

_DELIMITERS = re.compile(r"[\x09\x20-\x2f\x3b-\x40\x5b-\x60\x7b-\x7e]+")
_TIME = re.compile(r"^(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\D.*)?$")
_DAY = re.compile(r"^(\d{1,2})(?:\D.*)?$")
_YEAR = re.compile(r"^(\d{2,4})(?:\D.*)?$")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MAX_AGE = re.compile(r"^-?\d+$")
_FORMAT = "Set-Cookie"


def parse_cookie_date(text: str) -> float | None:
    """An Expires value as epoch seconds, or None if it is not a date.

    Follows the RFC 6265 5.1.1 algorithm, so RFC 1123 ("Wed, 09 Jun 2021 10:18:14 GMT"),
    RFC 850 ("Wednesday, 09-Jun-21 10:18:14 GMT"), asctime ("Wed Jun  9 10:18:14 2021")
    and the usual variants all parse; two-digit years 70-99 are 19xx, 00-69 are 20xx.
    """
    hms = day = month = year = None
    for token in _DELIMITERS.split(text):
        if not token:
            continue
        if hms is None and (m := _TIME.match(token)):
            hms = tuple(int(g) for g in m.groups())
        elif day is None and (m := _DAY.match(token)):
            day = int(m.group(1))
        elif month is None and token[:3].lower() in _MONTHS:
            month = _MONTHS.index(token[:3].lower()) + 1
        elif year is None and (m := _YEAR.match(token)):
            year = int(m.group(1))
    if hms is None or day is None or month is None or year is None:
        return None
    if 70 <= year <= 99:
        year += 1900
    elif 0 <= year <= 69:
        year += 2000
    hour, minute, second = hms
    if year < 1601 or hour > 23 or minute > 59 or second > 59:
        return None
    try:
        datetime(year, month, day)
    except ValueError:
        return None
    return float(calendar.timegm((year, month, day, hour, minute, second)))


def _request_parts(request: str) -> tuple[str, str]:
    host = normalize_host(request)
    if not host:
        raise CookieFormatError("the request host is empty", fmt=_FORMAT)
    path = urlsplit(request).path if "://" in request else "/"
    return host, path or "/"


def parse_set_cookie(header: str, request: str, *, now: float | None = None) -> Cookie:
    """One `Set-Cookie` header value as a `Cookie`, for a response from `request` (a URL or a host).

    Max-Age wins over Expires; Max-Age <= 0 or a past Expires gives an already expired
    cookie (a deletion, which `SessionRecord.merge_cookies` applies). Without Domain the
    cookie is host-only; without a valid Path it gets the request's default path.
    Unknown attributes (Partitioned, Priority, ...) are ignored. Raises `CookieFormatError`
    for a cookie a browser would ignore: no "name=value", an empty name, or a Domain that
    does not domain-match the request host (or is a bare top-level domain).
    """
    now = time.time() if now is None else now
    host, request_path = _request_parts(request)
    pair, *attributes = header.split(";")
    if "=" not in pair:
        raise CookieFormatError("no '=' in the cookie's name-value pair", fmt=_FORMAT)
    name, _, value = pair.partition("=")
    name, value = name.strip(), value.strip()
    if not name:
        raise CookieFormatError("the cookie name is empty", fmt=_FORMAT)
    expires = max_age = domain = path = same_site = None
    secure = http_only = False
    for attribute in attributes:
        key, _, arg = attribute.partition("=")
        key, arg = key.strip().lower(), arg.strip()
        if key == "expires" and (date := parse_cookie_date(arg)) is not None:
            expires = date
        elif key == "max-age" and _MAX_AGE.match(arg):
            max_age = int(arg)
        elif key == "domain" and arg.lstrip("."):
            domain = arg.lstrip(".").lower()
        elif key == "path":
            path = arg if arg.startswith("/") else None
        elif key == "secure":
            secure = True
        elif key == "httponly":
            http_only = True
        elif key == "samesite":
            same_site = next((v for v in SAME_SITE_VALUES if v.lower() == arg.lower()), None)
    if max_age is not None:
        expires = now + max_age if max_age > 0 else 0.0
    if domain is not None and not domain_match(host, domain):
        raise CookieFormatError(f"Domain={domain} does not domain-match the request host {host}", fmt=_FORMAT)
    if domain is not None and "." not in domain and domain != host:
        raise CookieFormatError(f"Domain={domain} is a top-level domain", fmt=_FORMAT)
    return Cookie(
        name=name,
        value=value,
        domain=domain or host,
        path=path or default_path(request_path),
        expires=expires,
        secure=secure,
        http_only=http_only,
        same_site=same_site,
        host_only=domain is None,
    )


def parse_set_cookies(headers: Iterable[str] | str, request: str, *, now: float | None = None) -> list[Cookie]:
    """Every valid cookie among `headers` (one `Set-Cookie` value each, or a single string).

    Cookies a browser would ignore are skipped and logged at debug level (never with values).
    """
    if isinstance(headers, str):
        headers = [headers]
    cookies = []
    for header in headers:
        try:
            cookies.append(parse_set_cookie(header, request, now=now))
        except CookieFormatError as exc:
            log.debug("ignored a Set-Cookie header: %s", exc)
    return cookies
