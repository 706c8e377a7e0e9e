"""`SessionRecord`: everything harvested for one (site, profile)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from . import schema
from .cookie import Cookie, is_ip_address, normalize_host, path_match
from .errors import CacheCorruptError, CacheSchemaError
from .redact import redact, redact_url

DEFAULT_PROFILE = "default"
_LEGACY_KEYS = frozenset(("essential_cookies", "generation"))
SOURCES = ("harvest", "login", "import", "response")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
EXPIRY_SLACK = 60.0
"""Seconds an expiry may slide later before the change is worth a write: a cookie with a
sliding expiry (Cloudflare's ``__cf_bm``) is sent again on every response."""


def valid_name(name: object) -> bool:
    """Whether `name` is a valid site or profile name (it becomes a file name)."""
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def check_name(kind: str, name: str) -> str:
    """A site or profile name: 1-64 of letters, digits, '_' and '-', starting alphanumeric."""
    if not valid_name(name):
        raise ValueError(f"invalid {kind} name {name!r}: use 1-64 letters, digits, '_' or '-'")
    return name


def session_expires_at(
    cookies: Iterable[Cookie], essential: Iterable[str], api_key_expires_at: float | None = None
) -> float | None:
    """The earliest expiry among the essential cookies (by name) and the API key.

    Session cookies and a key without expiry add no deadline; None means no known expiry.
    A missing essential cookie makes the session unusable, so the result is then 0.0.
    """
    cookies = list(cookies)
    deadlines = [] if api_key_expires_at is None else [api_key_expires_at]
    for name in essential:
        found = [c for c in cookies if c.name == name]
        if not found:
            return 0.0
        deadlines.extend(c.expires for c in found if c.expires is not None)
    return min(deadlines, default=None)


def _slid(old: float | None, new: float | None, slack: float) -> bool:
    return old == new or (old is not None and new is not None and 0 <= new - old < slack)


@dataclass(repr=False)
class SessionRecord:
    """A harvested browser session for one (site, profile); see the field list in the README.

    ``essential_cookies`` (written by the harvester) name the cookies whose expiry is the
    session's; ``generation`` is the protocol generation the client last used with it
    (Cloudflare). Records of older versions kept both under ``extra``; they are read from there.
    """

    site: str
    profile: str = DEFAULT_PROFILE
    harvested_at: float = field(default_factory=time.time)
    expires_at: float | None = None
    user_agent: str | None = None
    client_hints: dict[str, str] = field(default_factory=dict)
    cookies: list[Cookie] = field(default_factory=list)
    api_key: str | None = None
    api_key_expires_at: float | None = None
    proxy: str | None = None
    source: str = "harvest"
    essential_cookies: list[str] = field(default_factory=list)
    generation: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    schema_version: int = schema.SCHEMA_VERSION

    def __post_init__(self) -> None:
        check_name("site", self.site)
        check_name("profile", self.profile)
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, not {self.source!r}")
        if _LEGACY_KEYS.intersection(self.extra):  # a record (or writer) of an older version
            self.extra = dict(self.extra)
            legacy_essential = self.extra.pop("essential_cookies", None)
            legacy_generation = self.extra.pop("generation", None)
            if not self.essential_cookies and isinstance(legacy_essential, list):
                self.essential_cookies = [str(name) for name in legacy_essential]
            if self.generation is None and isinstance(legacy_generation, str):
                self.generation = legacy_generation

    # -- cookies ---------------------------------------------------------------------------

    def _live_cookies(self, now: float | None) -> list[Cookie]:
        now = time.time() if now is None else now
        return [c for c in self.cookies if not c.is_expired(now)]

    @staticmethod
    def _as_jar(cookies: Iterable[Cookie]) -> dict[str, str]:
        # The most specific cookie (longest path, then longest domain) wins a name.
        ordered = sorted(cookies, key=lambda c: (len(c.path), len(c.domain)))
        return {c.name: c.value for c in ordered}

    def cookies_for(self, host: str, *, now: float | None = None) -> dict[str, str]:
        """name -> value of the unexpired cookies whose domain matches `host` (any path)."""
        return self._as_jar(c for c in self._live_cookies(now) if c.matches_host(host))

    def cookie_jar(self, url_or_host: str, *, now: float | None = None) -> dict[str, str]:
        """Like `cookies_for`; given a URL, also applies path matching and Secure (https only,
        or loopback)."""
        if "://" not in url_or_host:
            return self.cookies_for(url_or_host, now=now)
        parts = urlsplit(url_or_host)
        host = normalize_host(url_or_host)
        secure = (
            parts.scheme in ("https", "wss")
            or host == "localhost"
            or (is_ip_address(host) and host.startswith(("127.", "::1")))
        )
        return self._as_jar(
            c
            for c in self._live_cookies(now)
            if c.matches_host(host) and path_match(parts.path or "/", c.path) and (secure or not c.secure)
        )

    def merge_cookies(
        self, cookies: Iterable[Cookie], *, now: float | None = None, essential: Iterable[str] | None = None
    ) -> SessionRecord:
        """A copy with `cookies` merged in, replacing by (name, domain, path).

        A new cookie that is already expired deletes its match (Set-Cookie deletion); expired
        cookies already held are dropped too. With `essential`, `expires_at` is recomputed.
        """
        now = time.time() if now is None else now
        merged = {c.key: c for c in self._live_cookies(now)}
        for cookie in cookies:
            if cookie.is_expired(now):
                merged.pop(cookie.key, None)
            else:
                merged[cookie.key] = cookie
        record = replace(self, cookies=list(merged.values()))
        if essential is not None:
            record.expires_at = session_expires_at(record.cookies, essential, record.api_key_expires_at)
        return record

    def slid_from(self, older: SessionRecord, slack: float = EXPIRY_SLACK) -> bool:
        """Whether this record is ``older`` but for expiries (of cookies, of the session) that
        moved later by less than ``slack`` seconds: not worth a write. Kept as it is, ``older``
        says a sliding cookie ends at most ``slack`` seconds earlier than the server will."""
        if len(self.cookies) != len(older.cookies) or not _slid(older.expires_at, self.expires_at, slack):
            return False
        if replace(self, cookies=older.cookies, expires_at=older.expires_at) != older:
            return False
        held = {cookie.key: cookie for cookie in older.cookies}
        for cookie in self.cookies:
            old = held.get(cookie.key)
            if old is None or not _slid(old.expires, cookie.expires, slack) or replace(cookie, expires=old.expires) != old:
                return False
        return True

    # -- serialisation -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, the one stored in the cache."""
        return {
            "schema_version": self.schema_version,
            "site": self.site,
            "profile": self.profile,
            "harvested_at": self.harvested_at,
            "expires_at": self.expires_at,
            "user_agent": self.user_agent,
            "client_hints": dict(self.client_hints),
            "cookies": [c.to_dict() for c in self.cookies],
            "api_key": self.api_key,
            "api_key_expires_at": self.api_key_expires_at,
            "proxy": self.proxy,
            "source": self.source,
            "essential_cookies": list(self.essential_cookies),
            "generation": self.generation,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SessionRecord:
        """Inverse of `to_dict`.

        Raises `CacheSchemaError` for a newer schema version and `CacheCorruptError` for
        anything else that is not a valid record (missing fields, wrong types). Unknown keys
        are ignored (``impersonate``, which no version wrote, among them); ``essential_cookies``
        and ``generation`` may be missing (older records keep them under ``extra``).
        """
        data = schema.as_mapping(data, "")
        version = schema.need(data, "schema_version", "")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise CacheCorruptError("field schema_version must be a positive integer")
        if version > schema.SCHEMA_VERSION:
            raise CacheSchemaError(version, schema.SCHEMA_VERSION)
        cookies = schema.as_list(data, "cookies")
        try:
            return cls(
                site=schema.as_str(data, "site"),
                profile=schema.as_str(data, "profile"),
                harvested_at=schema.as_float(data, "harvested_at"),
                expires_at=schema.as_float(data, "expires_at", optional=True),
                user_agent=schema.as_str(data, "user_agent", optional=True),
                client_hints=schema.as_dict(data, "client_hints", values=str),
                cookies=[Cookie.from_dict(c, f"cookies[{i}].") for i, c in enumerate(cookies)],
                api_key=schema.as_str(data, "api_key", optional=True),
                api_key_expires_at=schema.as_float(data, "api_key_expires_at", optional=True),
                proxy=schema.as_str(data, "proxy", optional=True),
                source=schema.as_str(data, "source"),
                essential_cookies=schema.as_str_list(data, "essential_cookies", missing=[]),
                generation=schema.as_str(data, "generation", optional=True, missing=None),
                extra=schema.as_dict(data, "extra"),
                schema_version=schema.SCHEMA_VERSION,
            )
        except ValueError as exc:
            if isinstance(exc, CacheCorruptError):
                raise
            raise CacheCorruptError(str(exc)) from None

    # -- display ------------------------------------------------------------------------------

    def redacted(self) -> dict[str, Any]:
        """`to_dict` with the API key, cookie values and proxy password redacted: safe to show."""
        data = self.to_dict()
        data["api_key"] = redact(self.api_key) if self.api_key else self.api_key
        data["proxy"] = redact_url(self.proxy)
        for cookie in data["cookies"]:
            cookie["value"] = redact(cookie["value"])
        return data

    def __repr__(self) -> str:
        api_key = redact(self.api_key) if self.api_key else None
        return (
            f"SessionRecord(site={self.site!r}, profile={self.profile!r}, source={self.source!r}, "
            f"harvested_at={self.harvested_at!r}, expires_at={self.expires_at!r}, "
            f"user_agent={self.user_agent!r}, generation={self.generation!r}, "
            f"cookies={[c.name for c in self.cookies]!r}, api_key={api_key!r}, "
            f"proxy={redact_url(self.proxy)!r}, extra_keys={sorted(self.extra)!r})"
        )
