"""The harvest of one site in one tab of a running browser, driven by the site's recipe alone.

Opens the start page, then polls every `POLL` seconds (the page's state in one evaluation, the
Network log, the browser process) until the recipe's conditions hold: page ready and past any
challenge, signed in when the site needs it, required captures and cookies present. Anything that
cannot get better by waiting (a dead site, a signed-out profile, a challenge that wants a person,
a dead browser) is raised at once as a typed error, not after the timeout.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from harvestkit.cache import (
    Cookie,
    SessionRecord,
    parse_cdp_cookies,
    redact,
    session_expires_at,
)

from harvestkit.common.recording import current_recording

from .browser import Chromium
from .errors import (
    BrowserDied,
    ChallengeNeedsHuman,
    ChallengeRefused,
    HarvestTimeout,
    SignedOut,
    SiteUnreachable,
)
from .har_recorder import HarRecorder
from .network import NetworkLog, SniffResult
from .progress import Reporter
from .recipe import HINT_HEADERS, Recipe, json_path

POLL = 0.05  # seconds between two looks at the page
EXIT_GRACE = 0.5  # how long a lost DevTools connection may wait for the browser's exit to show
PageHook = Callable[[Any], Awaitable[None]]


@dataclass
class Job:
    """One site to harvest in one tab."""

    recipe: Recipe
    profile: str
    deadline: float  # time.monotonic() by which it must be done
    report: Reporter
    interactive: bool = False  # a person is at the browser (login): wait for them instead of failing
    proxy: str | None = None
    source: str = "harvest"
    on_page: PageHook | None = None  # given the tab once the start page is open (tests, login)


class TabHarvest:
    """The state of one harvest while it polls."""

    def __init__(self, chromium: Chromium, tab: Any, job: Job) -> None:
        self.chromium, self.tab, self.job, self.recipe = chromium, tab, job, job.recipe
        self.site = job.recipe.name
        self.log = NetworkLog(tab, job.recipe)
        self.seen: set[str] = set()  # progress steps already reported
        self.checked = 0  # sniff results already checked for errors
        self.captures: dict[str, Any] = {}
        self.signed_in: bool | None = None
        self.ready_since: float | None = None
        self.fetched: set[int] = set()  # sniffs fetched from the page by us
        self.waiting_for = "the page to load"
        self.script = job.recipe.probe_script()

    # -- CDP with the deadline and the browser's death in mind ----------------------------------------

    async def send(self, command: Any, connection: Any = None) -> Any:
        from nodriver.core.connection import ProtocolException
        from websockets.exceptions import WebSocketException

        remaining = self.job.deadline - time.monotonic()
        if remaining <= 0:
            raise self.timeout()
        try:
            return await asyncio.wait_for((connection or self.tab).send(command), remaining)
        except TimeoutError:
            raise self.timeout() from None
        except ProtocolException:
            raise
        except (OSError, RuntimeError, WebSocketException) as exc:  # the DevTools connection is
            raise await self.died(exc) from None  # gone: so, most likely, is the browser

    async def died(self, cause: BaseException | None = None) -> BrowserDied:
        return await browser_died(self.chromium, self.site, cause)

    def timeout(self) -> HarvestTimeout:
        return HarvestTimeout(
            f"{self.site}: no session after {self.job.report.elapsed():.3g} s: still waiting for {self.waiting_for}",
            site=self.site,
            profile=self.job.profile,
        )

    def unreachable(self, why: str) -> SiteUnreachable:
        return SiteUnreachable(f"{self.site}: {why}", site=self.site, profile=self.job.profile)

    def once(self, step: str, detail: str = "") -> None:
        if step not in self.seen:
            self.seen.add(step)
            self.job.report(step, self.site, detail)

    # -- the harvest ------------------------------------------------------------------------------------

    async def run(self) -> SessionRecord:
        from nodriver import cdp

        hook: asyncio.Task[None] | None = None
        try:
            await self.send(self.log.attach())
            trace = current_recording()
            if trace is not None:  # `--record`: this tab's traffic goes into the trace too
                recorder = HarRecorder(self.tab)
                await self.send(recorder.attach())
                trace.add_source(recorder)
            _, _, error, *_ = await self.send(cdp.page.navigate(self.recipe.start_url))
            if error:
                raise self.unreachable(f"cannot open {self.recipe.start_url}: {error}")
            if self.job.on_page is not None:
                hook = asyncio.ensure_future(self.job.on_page(self.tab))
            while True:
                if hook is not None and hook.done():
                    hook.result()  # raises what the hook raised
                record = await self.step()
                if record is not None:
                    return record
                if time.monotonic() >= self.job.deadline:
                    raise self.timeout()
                await asyncio.sleep(POLL)
        finally:
            if hook is not None and not hook.done():
                hook.cancel()
                await asyncio.gather(hook, return_exceptions=True)
            await self.log.close()

    async def step(self) -> SessionRecord | None:
        """One look at everything; the record once the harvest is complete."""
        if self.chromium.returncode is not None:
            raise await self.died()
        self.check_network()
        state = await self.probe()
        if state is None:
            return None
        if state["loaded"]:
            self.once("page-loaded", state["title"])
        if state["challenge"]:
            if not state["loaded"]:  # half parsed: what kind of challenge it is may come further down
                return None
            detail = await self.blocked_detail() if state["challenge"] == "blocked" else ""
            self.on_challenge(state["challenge"], state["url"], detail)
            return None
        if "challenge-seen" in self.seen:
            self.once("challenge-passed")
        if state["loaded"]:
            document = self.log.last_document()
            if document is not None and document.status is not None and document.status >= 400:
                raise self.unreachable(f"{document.url} answered HTTP {document.status}")
        self.collect()
        if not state["ready"]:
            self.waiting_for = "the page to be ready"
            return None
        self.ready_since = self.ready_since or time.monotonic()
        if self.recipe.needs_sign_in and not self.signed_in:
            self.waiting_for = "the sign-in" if self.signed_in is False else "the session"
            await self.fall_back()
            return None
        missing = [name for name in self.recipe.required if self.captures.get(name) in (None, "")]
        if missing:
            self.waiting_for = ", ".join(missing)
            await self.fall_back()
            return None
        return await self.finish()

    def check_network(self) -> None:
        self.log.check()
        document = self.log.last_document()
        if document is not None and document.failed:
            raise self.unreachable(f"loading {document.url} failed: {document.failed}")
        for result in self.log.results[self.checked :]:
            self.checked += 1
            if not 200 <= result.status < 300:
                answer = f"HTTP {result.status}" if result.status else "no answer"
                raise self.unreachable(f"{result.sniff.url} gave {answer}")

    async def probe(self) -> dict[str, Any] | None:
        """The page's state, or None while it navigates."""
        from nodriver import cdp
        from nodriver.core.connection import ProtocolException

        try:
            remote, error = await self.send(cdp.runtime.evaluate(self.script, return_by_value=True))
        except ProtocolException:  # no execution context in the middle of a navigation
            return None
        if error is not None or not isinstance(remote.value, str):
            return None
        return json.loads(remote.value)

    async def blocked_detail(self) -> str:
        """What a block page says after its "you have been blocked" (the reason, when it gives one)."""
        from nodriver import cdp

        markers = json.dumps(list(self.recipe.challenge.blocked))
        script = (
            "(() => { const text = document.body ? document.body.innerText : '';"
            f" for (const m of {markers}) {{ const i = text.indexOf(m);"
            " if (i >= 0) return text.slice(i + m.length).trim().split('\\n')[0].slice(0, 300); }"
            " return ''; })()"
        )
        try:
            remote, error = await self.send(cdp.runtime.evaluate(script, return_by_value=True))
        except Exception:  # noqa: BLE001 - a detail for the message; the refusal stands without it
            return ""
        return remote.value if error is None and isinstance(remote.value, str) else ""

    def on_challenge(self, kind: str, url: str, detail: str = "") -> None:
        host = url.split("/")[2] if url.count("/") >= 2 else self.recipe.host
        self.once("challenge-seen", kind)
        self.waiting_for = f"the challenge of {host} to pass"
        if self.job.interactive:
            self.waiting_for = f"someone to solve the challenge of {host} in the browser window"
            self.once("waiting-for-user", "solve the challenge in the browser window")
        elif kind == "interactive":
            raise ChallengeNeedsHuman(self.site, self.job.profile, host)
        elif kind == "blocked":
            reason = f": {detail}" if detail else ""
            raise ChallengeRefused(
                f"{self.site}: {host} refused this browser (\"you have been blocked\"){reason}",
                site=self.site,
                profile=self.job.profile,
            )

    def collect(self) -> None:
        """Take captures and the signed-in state from the sniffed responses, newest last."""
        results: list[SniffResult] = [r for r in self.log.results if r.body_ok]
        for result in results:
            if result.sniff.signed_in is not None:
                self.signed_in = bool(json_path(result.data, result.sniff.signed_in))
            for name, path in result.sniff.captures.items():
                value = json_path(result.data, path)
                if value not in (None, ""):
                    self.captures[name] = value
        if self.signed_in is False and self.recipe.needs_sign_in:
            if not self.job.interactive:
                raise SignedOut(self.site, self.job.profile)
            self.once("waiting-for-user", "sign in in the browser window")
        if self.signed_in:
            self.once("signed-in")
        if self.captures.get("api_key"):
            self.once("key-captured", redact(str(self.captures["api_key"])))

    async def fall_back(self) -> None:
        """Fetch, from the page, the sniffed URLs the page did not request itself in time."""
        from nodriver import cdp

        assert self.ready_since is not None
        if time.monotonic() - self.ready_since < self.recipe.fallback_after:
            return
        for index, sniff in enumerate(self.recipe.sniffs):
            if sniff.fetch is None or sniff in self.log.requested or index in self.fetched:
                continue
            self.fetched.add(index)
            init = {"method": sniff.fetch.method, "headers": dict(sniff.fetch.headers), "credentials": "include"}
            if sniff.fetch.body is not None:
                init["body"] = sniff.fetch.body
            script = f"fetch({json.dumps(sniff.url)}, {json.dumps(init)}).catch(() => null); true"
            await self.send(cdp.runtime.evaluate(script))

    async def finish(self) -> SessionRecord | None:
        """The record, once the browser holds the required cookies."""
        from nodriver import cdp

        raw = await self.send(cdp.storage.get_cookies(), self.chromium.browser)
        by_key: dict[tuple[str, str, str], Cookie] = {}
        for cookie in parse_cdp_cookies([c.to_json() for c in raw]):  # partitions: the longest-lived
            if self.recipe.keeps(cookie) and (cookie.key not in by_key or _later(cookie, by_key[cookie.key])):
                by_key[cookie.key] = cookie
        cookies = list(by_key.values())
        names = {c.name for c in cookies}
        missing = [name for name in self.recipe.required_cookies if name not in names]
        if missing:
            self.waiting_for = "the cookies " + ", ".join(missing)
            return None
        headers = self.log.copied_headers()
        user_agent = headers.pop("user-agent", None) or self.chromium.user_agent
        hints = {name: headers.pop(name) for name in HINT_HEADERS if name in headers}
        extra: dict[str, Any] = {"browser": self.chromium.version, "url": self.recipe.start_url}
        if headers:
            extra["headers"] = headers
        extra.update({k: v for k, v in self.captures.items() if k not in ("api_key", "api_key_expires_at")})
        key_expires = epoch_time(self.captures.get("api_key_expires_at"))
        essential = [n for n in self.recipe.essential_cookies if n in names]  # the site may not set all
        self.once("captured", f"{len(cookies)} cookies")
        return SessionRecord(
            site=self.site,
            profile=self.job.profile,
            expires_at=session_expires_at(cookies, essential, key_expires),
            user_agent=user_agent,
            client_hints=hints,
            cookies=cookies,
            api_key=self.captures.get("api_key"),
            api_key_expires_at=key_expires,
            proxy=self.job.proxy,
            source=self.job.source,
            essential_cookies=essential,  # for whoever merges Set-Cookie into the record later
            extra=extra,
        )


def _later(cookie: Cookie, other: Cookie) -> bool:
    """Whether `cookie` outlives `other` (a session cookie counts as shortest)."""
    return (cookie.expires or 0.0) > (other.expires or 0.0)


def epoch_time(value: Any) -> float | None:
    """An epoch time from a number or an ISO 8601 string (None if neither)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return None
    return None


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says the DevTools connection is gone (so, most likely, is the browser)."""
    from websockets.exceptions import WebSocketException

    return isinstance(exc, (OSError, RuntimeError, WebSocketException))


async def browser_died(chromium: Chromium, site: str, cause: BaseException | None = None) -> BrowserDied:
    """The error for a browser that went away in the middle of a harvest, with how it ended."""
    until = time.monotonic() + EXIT_GRACE
    while chromium.returncode is None and time.monotonic() < until:
        await asyncio.sleep(0.01)
    code = chromium.returncode
    how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
    if code is None:
        how = f"stopped answering ({type(cause).__name__})"
    return BrowserDied(f"{site}: the browser (pid {chromium.pid}) {how} in the middle of the harvest")


async def seed_cookies(chromium: Chromium, cookies: list[Cookie]) -> None:
    """Give the browser the cached cookies before it opens a page: the cache may be newer (a
    client kept rotated cookies, or they were imported). A browser cookie of the same name,
    domain and path but another value is deleted first, in every partition."""
    from nodriver import cdp

    if not cookies:
        return
    held: dict[tuple[str, str, str], list[Any]] = {}
    for raw in await chromium.browser.send(cdp.storage.get_cookies()):
        held.setdefault((raw.name, raw.domain.lstrip(".").lower(), raw.path), []).append(raw)
    tab = chromium.browser.main_tab
    fresh = []
    for cookie in cookies:
        same = held.get(cookie.key, [])
        if same and all(raw.value == cookie.value for raw in same):
            continue
        for raw in same:
            await tab.send(
                cdp.network.delete_cookies(raw.name, domain=raw.domain, path=raw.path, partition_key=raw.partition_key)
            )
        fresh.append(_cookie_param(cookie))
    if fresh:
        await chromium.browser.send(cdp.storage.set_cookies(fresh))


def _cookie_param(cookie: Cookie) -> Any:
    """A cached cookie as CDP's CookieParam (host-only cookies by URL, domain cookies by domain)."""
    from nodriver import cdp

    same_site = cdp.network.CookieSameSite(cookie.same_site) if cookie.same_site else None
    return cdp.network.CookieParam(
        name=cookie.name,
        value=cookie.value,
        url=f"https://{cookie.domain}{cookie.path}" if cookie.host_only else None,
        domain=None if cookie.host_only else "." + cookie.domain,
        path=cookie.path,
        secure=cookie.secure,
        http_only=cookie.http_only,
        same_site=same_site,
        expires=cdp.network.TimeSinceEpoch(cookie.expires) if cookie.expires is not None else None,
    )
