"""The `Cookie` record and the RFC 6265 domain and path matching rules."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from . import schema
from .errors import CacheCorruptError
from .redact import redact

SAME_SITE_VALUES = ("Strict", "Lax", "None")


@dataclass(frozen=True, repr=False)
class Cookie:
    """One cookie, as a browser stores it.

    `domain` is kept lower-case without a leading dot; `host_only` says whether the cookie
    goes to that exact host only (no Domain attribute) or to its subdomains too. A domain
    given with a leading dot is a domain cookie. `expires` is an epoch time, None for a
    session cookie. `same_site` is "Strict", "Lax", "None" or None (unspecified).
    """

    name: str
    value: str
    domain: str
    path: str = "/"
    expires: float | None = None
    secure: bool = False
    http_only: bool = False
    same_site: str | None = None
    host_only: bool = False

    def __post_init__(self) -> None:
        domain = self.domain.strip().lower().rstrip(".")
        if domain.startswith("."):
            if self.host_only:
                raise ValueError("a host-only cookie's domain cannot start with '.'")
            domain = domain.lstrip(".")
        if not domain:
            raise ValueError("cookie domain must not be empty")
        if not self.name:
            raise ValueError("cookie name must not be empty")
        if not self.path.startswith("/"):
            raise ValueError("cookie path must start with '/'")
        if self.same_site not in (None, *SAME_SITE_VALUES):
            raise ValueError(f"same_site must be one of {SAME_SITE_VALUES} or None")
        object.__setattr__(self, "domain", domain)
        if self.expires is not None:
            object.__setattr__(self, "expires", float(self.expires))

    @property
    def key(self) -> tuple[str, str, str]:
        """Identity in a cookie store: (name, domain, path)."""
        return (self.name, self.domain, self.path)

    def is_expired(self, now: float | None = None) -> bool:
        """True once `expires` has passed (never for a session cookie)."""
        return self.expires is not None and self.expires <= (time.time() if now is None else now)

    def matches_host(self, host: str) -> bool:
        """Whether this cookie is sent to `host` (RFC 6265 domain matching)."""
        host = normalize_host(host)
        return host == self.domain if self.host_only else domain_match(host, self.domain)

    def __repr__(self) -> str:
        return (
            f"Cookie(name={self.name!r}, value={redact(self.value)!r}, domain={self.domain!r}, "
            f"path={self.path!r}, expires={self.expires!r}, secure={self.secure}, "
            f"http_only={self.http_only}, same_site={self.same_site!r}, host_only={self.host_only})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, the one stored in the cache."""
        return {
            "name": self.name,
            "value": self.value,
            "domain": self.domain,
            "path": self.path,
            "expires": self.expires,
            "secure": self.secure,
            "http_only": self.http_only,
            "same_site": self.same_site,
            "host_only": self.host_only,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "") -> Cookie:
        """Inverse of `to_dict`; raises `CacheCorruptError` naming the bad field."""
        data = schema.as_mapping(data, where.rstrip("."))
        try:
            return cls(
                name=schema.as_str(data, "name", where),
                value=schema.as_str(data, "value", where),
                domain=schema.as_str(data, "domain", where),
                path=schema.as_str(data, "path", where),
                expires=schema.as_float(data, "expires", where, optional=True),
                secure=schema.as_bool(data, "secure", where),
                http_only=schema.as_bool(data, "http_only", where),
                same_site=schema.as_str(data, "same_site", where, optional=True),
                host_only=schema.as_bool(data, "host_only", where),
            )
        except ValueError as exc:
            if isinstance(exc, CacheCorruptError):
                raise
            raise CacheCorruptError(f"{where.rstrip('.') or 'cookie'}: {exc}") from None


def normalize_host(url_or_host: str) -> str:
    """The lower-case host name of a URL or of a "host[:port]" string."""
    text = url_or_host.strip()
    if "://" not in text:
        text = "//" + text
    host = urlsplit(text).hostname or ""
    return host.rstrip(".").lower()


def is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def domain_match(host: str, domain: str) -> bool:
    """RFC 6265 5.1.3: `host` is `domain` or a subdomain of it (never for IP addresses)."""
    host, domain = host.lower(), domain.lower().lstrip(".")
    if host == domain:
        return True
    return host.endswith("." + domain) and not is_ip_address(host)


def path_match(request_path: str, cookie_path: str) -> bool:
    """RFC 6265 5.1.4: `cookie_path` is `request_path` or one of its directories."""
    if request_path == cookie_path:
        return True
    if not request_path.startswith(cookie_path):
        return False
    return cookie_path.endswith("/") or request_path[len(cookie_path)] == "/"


def default_path(request_path: str) -> str:
    """RFC 6265 5.1.4: the directory of the request path, for a cookie without Path."""
    if not request_path.startswith("/") or request_path.count("/") == 1:
        return "/"
    return request_path[: request_path.rindex("/")]
