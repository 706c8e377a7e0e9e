"""A browserless stand-in for the harvester, for client tests where the browser is not the subject.

It does over HTTP what a harvest does in Chromium (sign in to the Cerebras demo, pass the
Cloudflare challenge), then stores the record through the cache's single-flight refresh, as the
real harvester does. It counts its harvests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from harvestkit.cache import AuthCache, Cookie, SessionRecord
from harvestkit.client import Cerebras, Cloudflare, Settings, aclose
from harvestkit.sandbox import Sandbox
from harvestkit.sandbox.shortcuts import (
    CHROME_UA,
    sandbox_session,
    sign_in,
    solve_challenge,
)

HINTS = {"sec-ch-ua": '"Chromium";v="136", "Not.A/Brand";v="99"', "sec-ch-ua-mobile": "?0", "sec-ch-ua-platform": '"Linux"'}
ESSENTIAL = {"cerebras": ["__Secure-authjs.session-token"], "cloudflare": ["cf_clearance"]}


def jar_cookies(jar) -> list[Cookie]:
    """A curl_cffi session's cookies as cache cookies."""
    cookies = []
    for c in jar:
        cookies.append(
            Cookie(
                name=c.name,
                value=c.value or "",
                domain=c.domain,
                path=c.path or "/",
                expires=float(c.expires) if c.expires else None,
                secure=bool(c.secure),
                http_only=c.has_nonstandard_attr("HttpOnly"),
                host_only=not c.domain.startswith("."),
            )
        )
    return cookies


@dataclass
class StandInHarvester:
    """``await harvester(site, profile=..., proxy=..., cache=...)`` like harvestkit.harvester.harvest."""

    sandbox: Sandbox
    signed_in: bool = True
    calls: list[str] = field(default_factory=list)

    async def record(self, site: str, profile: str, proxy: str | None) -> SessionRecord:
        self.calls.append(site)
        async with sandbox_session(self.sandbox.env) as session:
            api_key = None
            if site == "cerebras":
                if self.signed_in:
                    api_key = (await sign_in(session))["user"]["demoApiKey"]
                else:
                    await session.get("https://inference.cerebras.ai/api/auth/session")
            else:
                assert await solve_challenge(session, CHROME_UA)
            cookies = jar_cookies(session.cookies.jar)
        record = SessionRecord(
            site,
            profile,
            harvested_at=time.time(),
            user_agent=CHROME_UA,
            client_hints=dict(HINTS),
            cookies=cookies,
            api_key=api_key,
            proxy=proxy,
            essential_cookies=ESSENTIAL[site],
        )
        return record.merge_cookies([], essential=ESSENTIAL[site])

    async def __call__(
        self,
        site: str,
        *,
        profile: str = "default",
        proxy: str | None = None,
        cache: AuthCache | None = None,
        stale: float | None = None,
    ) -> SessionRecord:
        cache = cache or AuthCache()

        async def harvest() -> SessionRecord:
            return await self.record(site, profile, proxy)

        return await cache.refresh(site, harvest, profile=profile, force=True, stale=stale)


@dataclass
class ClientEnv:
    """A test's client world: the sandbox, a private cache and the stand-in harvester."""

    sandbox: Sandbox
    cache: AuthCache
    harvester: StandInHarvester

    def chats(self, host: str = "api.cerebras.ai", path: str = "/v1/chat/completions") -> list:
        return self.sandbox.requests(host, path)


@pytest.fixture
async def client_env(sandbox: Sandbox, sandbox_env: dict[str, str], tmp_path, monkeypatch) -> AsyncIterator[ClientEnv]:
    """Providers pointed at the sandbox, with a private HARVESTKIT_HOME, the stand-in
    harvester, fast backoff, and no model list carried over from another test. The test's
    event loop closes the client's sessions at the end."""
    monkeypatch.setenv("HARVESTKIT_HOME", str(tmp_path / "home"))
    harvester = StandInHarvester(sandbox)
    settings = Settings.from_env(harvest=harvester, backoff_base=0.01, backoff_cap=0.05, idle_timeout=10)
    for provider in (Cerebras, Cloudflare):
        monkeypatch.setattr(provider, "settings", settings)
        monkeypatch.setattr(provider, "_live_models", {})
    yield ClientEnv(sandbox, AuthCache(), harvester)
    await aclose()


async def eventually(check, timeout: float = 5.0) -> None:
    """Wait until ``check()`` is true: the sandbox logs a request when its handler ends, which
    may be just after the client has read the whole answer."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the sandbox never logged what was expected"
        await asyncio.sleep(0.01)
