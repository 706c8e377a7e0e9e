"""What a cookie import accepts: bounded input, only the site's own cookies, browser-sized values.

A browser keeps at most 180 cookies per domain and 4096 bytes of name and value per cookie, and a
server refuses request heads over a few tens of KiB; an import past those limits would give a
record no request can carry. So:

- the file is at most `MAX_IMPORT_BYTES` (read no further), UTF-8 text (else `CookieImportError`);
- a cookie whose domain is not one of the site's domains (or below one) is refused, and so is one
  set on a public suffix (a top-level domain such as ``.com`` or ``.ai``): each refusal names the
  cookie's name and domain, never its value;
- a cookie of more than `MAX_COOKIE_BYTES` (name and value) is refused;
- a session holding more than `MAX_COOKIES` cookies after the import is refused as a whole.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from .cookie import Cookie, domain_match
from .errors import CookieImportError

MAX_IMPORT_BYTES = 1 << 20
MAX_COOKIES = 300
MAX_COOKIE_BYTES = 4096


def decode_cookie_file(stream: BinaryIO, name: str, limit: int = MAX_IMPORT_BYTES) -> str:
    """The text of a cookie file read from `stream` (at most `limit` bytes), named `name` in errors."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise CookieImportError(
            f"{name} is larger than {limit // 1024} KiB: export only the site's cookies (a browser extension's "
            "per-site export, or `grep` the site's lines out of cookies.txt)"
        )
    nul = data.find(b"\0")
    if nul >= 0:
        raise CookieImportError(f"{name} is not a text cookie file: it holds a NUL byte (offset {nul})")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CookieImportError(
            f"{name} is not a text cookie file: byte 0x{data[exc.start]:02x} at offset {exc.start} is not UTF-8 "
            "(use cookies.txt or a cookie-extension JSON export)"
        ) from None
    if not text.strip():
        raise CookieImportError(f"{name} is empty: no cookies to import")
    return text


@dataclass
class Screened:
    """The cookies of an import that may be stored, and why each of the others was refused."""

    kept: list[Cookie] = field(default_factory=list)
    refused: list[tuple[Cookie, str]] = field(default_factory=list)

    def summary(self, limit: int = 6) -> str:
        """The refusals grouped by reason and domain, e.g. ``2 outside cerebras.ai (google.com)``."""
        groups = Counter((reason, cookie.domain) for cookie, reason in self.refused)
        parts = [f"{count} {reason} ({domain or '-'})" for (reason, domain), count in groups.most_common(limit)]
        if len(groups) > limit:
            parts.append(f"and {len(groups) - limit} more domain(s)")
        return "; ".join(parts)


def is_public_suffix(domain: str) -> bool:
    """A top-level domain (one label: ``com``, ``ai``): no site may set cookies there."""
    return "." not in domain.strip(".")


def screen_cookies(cookies: Iterable[Cookie], domains: Sequence[str]) -> Screened:
    """Split `cookies` into those of `domains` (or their subdomains) and the refused ones."""
    screened = Screened()
    allowed = ", ".join(domains)
    for cookie in cookies:
        if is_public_suffix(cookie.domain):
            screened.refused.append((cookie, "on a public suffix"))
        elif not any(domain_match(cookie.domain, domain) for domain in domains):
            screened.refused.append((cookie, f"outside {allowed}"))
        elif len(cookie.name.encode()) + len(cookie.value.encode()) > MAX_COOKIE_BYTES:
            screened.refused.append((cookie, f"over {MAX_COOKIE_BYTES} bytes"))
        else:
            screened.kept.append(cookie)
    return screened


def check_count(site: str, profile: str, count: int) -> None:
    """Refuse a session of more than `MAX_COOKIES` cookies."""
    if count > MAX_COOKIES:
        raise CookieImportError(
            f"{site}/{profile} would hold {count} cookies, more than the {MAX_COOKIES} a session may have "
            "(a browser keeps at most 180 per domain): import only the site's cookies, or pass --replace"
        )
