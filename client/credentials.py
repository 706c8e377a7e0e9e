"""Where a call's credentials come from, and how the cache is kept in step with responses.

Order: explicit ``api_key`` / ``cookies`` (never cached, never harvested: an explicit empty
dict means "no cookies"), then the auth cache, then a harvest when allowed. The harvester is
imported only when a harvest is needed, so the client runs without a browser library when
credentials exist.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harvestkit.cache import AuthCache, Cookie, SessionRecord, parse_set_cookies

from .errors import MissingCredentials
from .impersonate import BrowserIdentity, default_identity, harvested_identity
from .settings import Settings

if TYPE_CHECKING:
    from .pool import Member
    from .session_pool import SessionPool

__all__ = ["Credentials", "SiteAuth"]


@dataclass
class Credentials:
    """What one request presents: a browser identity, cookies and maybe an API key."""

    identity: BrowserIdentity
    api_key: str | None = None
    cookies: dict[str, str] = field(default_factory=dict)  # explicit cookies, for every host
    record: SessionRecord | None = None  # the cached session they come from
    proxy: str | None = None
    source: str = "cache"  # explicit | cache | default

    def cookie_jar(self, url: str) -> dict[str, str]:
        """The cookies to send to ``url``."""
        if self.record is not None:
            return self.record.cookie_jar(url)
        return dict(self.cookies)

    @property
    def harvested_at(self) -> float | None:
        return self.record.harvested_at if self.record is not None else None


class SiteAuth:
    """The credentials of one site for one call: load them, follow responses, recover once."""

    def __init__(
        self,
        site: str,
        settings: Settings,
        *,
        api_key: str | None = None,
        cookies: dict[str, str] | None = None,
        proxy: str | None = None,
        login_hint: str = "",
        cache: AuthCache | None = None,
        pool: SessionPool | None = None,
        member: Member | None = None,
    ) -> None:
        self.site = site
        self.settings = settings
        self.profile = settings.profile
        self.explicit_key = api_key
        self.explicit_cookies = cookies
        self.proxy_override = proxy or settings.proxy
        self.login_hint = login_hint
        self._cache: AuthCache | None = cache
        self.pool = pool
        self.member = member  # the pool member these credentials are, if any

    def for_member(self, pool: SessionPool, member: Member) -> SiteAuth:
        """The credentials of one pool member: its profile, harvested and used through its proxy."""
        return SiteAuth(self.site, self.settings.replace(profile=member.profile), proxy=member.proxy or self.proxy_override,
                        login_hint=self.login_hint, cache=self.cache, pool=pool, member=member)  # fmt: skip

    async def observe(self, headers: Mapping[str, str]) -> None:
        """A response's rate-limit headers, for the pool member they came from."""
        if self.pool is not None and self.member is not None:
            await self.pool.observe(self.cache, self.member, headers)

    @property
    def explicit(self) -> bool:
        return self.explicit_key is not None or self.explicit_cookies is not None

    @property
    def cache(self) -> AuthCache:
        if self._cache is None:
            self._cache = self.settings.auth_cache()
        return self._cache

    @property
    def may_harvest(self) -> bool:
        return not self.explicit and self.settings.allow_harvest

    def _from_record(self, record: SessionRecord) -> Credentials:
        return Credentials(
            identity=harvested_identity(record.user_agent, record.client_hints),
            api_key=record.api_key,
            record=record,
            proxy=self.proxy_override or record.proxy,
        )

    def default(self) -> Credentials:
        """Browser-like defaults with no session (what is tried when nothing else exists)."""
        return Credentials(default_identity(), proxy=self.proxy_override, source="default")

    async def load(self) -> Credentials | None:
        """Explicit credentials, else the cached session if it has not expired; None if none."""
        if self.explicit:
            return Credentials(
                identity=default_identity(),
                api_key=self.explicit_key,
                cookies=dict(self.explicit_cookies or {}),
                proxy=self.proxy_override,
                source="explicit",
            )
        record = await self.cache.get(self.site, self.profile)
        if record is None or (record.expires_at is not None and record.expires_at <= time.time()):
            return None
        if self.member is not None:
            from .pool import bound_to

            if not bound_to(record, self.member):
                return None  # harvested through another proxy: its clearance is not this member's
        return self._from_record(record)

    async def harvest(self, stale: Credentials | None = None) -> Credentials:
        """A freshly harvested session (single-flight: a session another caller harvested
        after ``stale`` is taken instead of starting a browser)."""
        if not self.may_harvest:
            raise self.missing("harvesting is disabled" if not self.explicit else "the explicit credentials were refused")
        current = await self.cache.get(self.site, self.profile)
        seen = stale.harvested_at if stale is not None else None
        if current is not None and seen is not None and current.harvested_at > seen:
            return self._from_record(current)
        harvest = self.settings.harvest
        if harvest is None:  # imported only now: the harvester needs a browser library
            from harvestkit.harvester import harvest
        try:
            record = await harvest(
                self.site, profile=self.profile, proxy=self.proxy_override, cache=self.cache, stale=seen
            )
        except Exception as exc:
            from harvestkit.harvester.errors import BrowserNotFound, BrowserStartError

            if isinstance(exc, (BrowserNotFound, BrowserStartError)):
                raise self.missing(f"nothing cached, and no browser to harvest with ({exc})") from exc
            raise
        return self._from_record(record)

    def missing(self, why: str) -> MissingCredentials:
        """The error for "no usable credentials", saying what to do."""
        hint = self.login_hint or f"Run `harvestkit harvest {self.site}` (or log in with `harvestkit login {self.site}`)."
        return MissingCredentials(f"no usable {self.site} session: {why}", provider=self.site, hint=hint)

    async def remember(self, credentials: Credentials, **changes: Any) -> Credentials:
        """Store ``changes`` (record fields) in the cached record the credentials came from;
        explicit credentials are never written, nor a record that already holds the changes
        (another call or process stored them first: 40 concurrent chats learning one session's
        generation cost one write, not 40)."""
        record = credentials.record
        if record is None:
            return credentials

        def apply(current: SessionRecord | None) -> SessionRecord | None:
            if current is None or all(getattr(current, name) == value for name, value in changes.items()):
                return None  # nothing to write
            return dataclasses.replace(current, **changes)

        stored = await self.cache.update(self.site, apply, self.profile, best_effort=True)
        if stored is not None:
            credentials.record = stored
            credentials.api_key = stored.api_key if "api_key" in changes else credentials.api_key
        return credentials

    @staticmethod
    def _unchanged(current: SessionRecord, merged: SessionRecord) -> bool:
        """A cookie sent again as it is, or with its expiry slid by less than a minute (the
        sliding ``__cf_bm`` of every Cloudflare response): nothing worth a write."""
        return merged == current or merged.slid_from(current)

    async def merge_set_cookies(self, credentials: Credentials, url: str, headers: Iterable[str]) -> None:
        """Merge a response's Set-Cookie headers into the cached session at once."""
        headers = list(headers)
        if headers:
            await self.merge_cookies(credentials, parse_set_cookies(headers, url))

    async def merge_cookies(self, credentials: Credentials, cookies: list[Cookie]) -> None:
        """Merge cookies a response set into the cached session (or the explicit cookies); the
        cache is written only when that changes the record."""
        if not cookies:
            return
        if credentials.record is None:
            if credentials.source == "explicit" and self.explicit_cookies:
                credentials.cookies.update({c.name: c.value for c in cookies})
            return

        held = credentials.record
        if self._unchanged(held, held.merge_cookies(cookies, essential=held.essential_cookies or None)):
            return  # what this process holds already says it: no lock, no read
        harvested_at = held.harvested_at

        def merge(current: SessionRecord | None) -> SessionRecord | None:
            if current is None or current.harvested_at != harvested_at:
                return None  # another caller harvested anew: these cookies belong to the old session
            merged = current.merge_cookies(cookies, essential=current.essential_cookies or None)
            return None if self._unchanged(current, merged) else merged

        stored = await self.cache.update(self.site, merge, self.profile, best_effort=True)
        if stored is not None and stored.harvested_at == harvested_at:
            credentials.record = stored
