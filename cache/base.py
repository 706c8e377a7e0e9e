"""What both session stores share: the record's stored form, freshness, and cookie files.

`encode` / `decode` are the one stored form of a record (UTF-8 JSON, the same in a file and in
Redis). `StoreBase` holds the rules that do not depend on where records live: when a record is
fresh, when a refresh waiter may return without harvesting, and importing or exporting a
record's cookies as a cookie file; a store class inherits them and provides `get_sync` and
`update_sync`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from .cookiefiles import dump_cookies, parse_cookies
from .errors import CacheCorruptError, CacheError, CookieImportError
from .limits import check_count, screen_cookies
from .record import DEFAULT_PROFILE, SessionRecord

UpdateFn = Callable[[SessionRecord | None], SessionRecord | None | Awaitable[SessionRecord | None]]
HarvestFn = Callable[[], SessionRecord | Awaitable[SessionRecord]]
DEFAULT_MAX_AGE = 12 * 3600.0
log = logging.getLogger("harvestkit.cache")


def encode(record: SessionRecord, key: tuple[str, str] | None = None) -> bytes:
    """The stored form of `record`, which must be valid (and for `key`, if given)."""
    if not isinstance(record, SessionRecord):
        raise TypeError(f"expected a SessionRecord, not {type(record).__name__}")
    site, profile = key or (record.site, record.profile)
    if (record.site, record.profile) != (site, profile):
        raise ValueError(f"expected a record for {site}/{profile}, not {record.site}/{record.profile}")
    try:
        text = json.dumps(record.to_dict(), ensure_ascii=False, allow_nan=False)
        SessionRecord.from_dict(json.loads(text))  # never write what would read back as corrupt
    except (TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"refusing to store an invalid record for {site}/{profile}: {exc}") from None
    return text.encode("utf-8")


def decode(data: bytes, site: str, profile: str) -> SessionRecord:
    """The record stored as `data` for (site, profile); `CacheCorruptError` if it is not one,
    `CacheSchemaError` if a newer harvestkit wrote it."""
    try:
        record = SessionRecord.from_dict(json.loads(data.decode("utf-8")))
    except json.JSONDecodeError as exc:
        raise CacheCorruptError(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except UnicodeDecodeError:
        raise CacheCorruptError("not UTF-8 text") from None
    except RecursionError:
        raise CacheCorruptError("JSON nested too deeply") from None
    if (record.site, record.profile) != (site, profile):
        raise CacheCorruptError(f"it holds the record of {record.site}/{record.profile}")
    return record


class StoreBase:
    """Freshness and cookie files, for a store with `max_age`, `get_sync` and `update_sync`."""

    max_age: float
    if TYPE_CHECKING:  # what the store class provides

        def get_sync(self, site: str, profile: str = DEFAULT_PROFILE) -> SessionRecord | None: ...
        def update_sync(self, site: str, fn: UpdateFn, profile: str = DEFAULT_PROFILE) -> SessionRecord | None: ...

    async def aclose(self) -> None:
        """Release the current event loop's connections to the store (the file store holds none)."""

    def is_fresh(
        self,
        record: SessionRecord | None,
        margin: float = 0.0,
        *,
        max_age: float | None = None,
        now: float | None = None,
    ) -> bool:
        """Whether `record` stays usable for `margin` more seconds (False for None).

        With `expires_at`: `now + margin < expires_at`. Without a known expiry: only within
        `max_age` (default: the store's) of `harvested_at`.
        """
        if record is None:
            return False
        now = time.time() if now is None else now
        if record.expires_at is not None:
            return now + margin < record.expires_at
        return now + margin - record.harvested_at < (self.max_age if max_age is None else max_age)

    def _settled(
        self, record: SessionRecord | None, seen: float | None, force: bool, margin: float, max_age: float | None
    ) -> bool:
        """Can `record` be returned without a harvest, before or after waiting for another caller's refresh?"""
        if force:  # only if someone else harvested while we waited
            return record is not None and record.harvested_at != seen
        return self.is_fresh(record, margin, max_age=max_age)

    def import_cookies(
        self,
        site: str,
        text: str,
        fmt: str | None = None,
        profile: str = DEFAULT_PROFILE,
        *,
        replace: bool = False,
        domains: Sequence[str] | None = None,
    ) -> SessionRecord:
        """Merge the cookies of a cookie file's `text` (format detected unless `fmt`) into the
        record, creating one with source "import" if there is none; `replace` drops the
        cookies held before. Returns the stored record.

        With `domains` (the site's), the limits of `harvestkit.cache.limits` apply: cookies of
        other domains, on a public suffix or too large are refused (logged as one warning that
        says which); `CookieImportError` when none is left or the session would grow too large.
        """
        cookies = parse_cookies(text, fmt)
        if domains is not None:
            screened = screen_cookies(cookies, domains)
            if screened.refused:
                message = f"{site}: refused {len(screened.refused)} of {len(cookies)} cookies: {screened.summary()}"
                if not screened.kept:
                    raise CookieImportError(f"no cookie to import; {message}")
                log.warning("%s", message)
            cookies = screened.kept
        if not cookies:
            raise CookieImportError(f"no cookies found for {site} (format {fmt or 'detected'})")

        def merge(record: SessionRecord | None) -> SessionRecord:
            record = record or SessionRecord(site, profile, source="import")
            if replace:
                record = dataclasses.replace(record, cookies=[])
            merged = record.merge_cookies(cookies)
            check_count(site, profile, len(merged.cookies))
            return merged

        return self.update_sync(site, merge, profile)  # type: ignore[return-value] - merge returns a record

    def export_cookies(self, site: str, fmt: str = "netscape", profile: str = DEFAULT_PROFILE) -> str:
        """The record's cookies as the text of a cookie file in `fmt`."""
        record = self.get_sync(site, profile)
        if record is None:
            raise CacheError(f"no cached session for {site}/{profile}")
        return dump_cookies(record.cookies, fmt)
