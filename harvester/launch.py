"""One browser for one or more sites: profile locks, trust, launch, a tab per site, teardown.

Profile directories: a harvest of one site runs in that (site, profile)'s own directory. Several
sites in one browser run in the directory of the first of them (sorted by name) that needs a
sign-in, else of the first of them: a sign-in kept there is used. Before any page opens, the
browser is given the cached cookies of every site it harvests, so a session imported into the
cache (or cookies a client refreshed since) carry over to whichever directory is used. Every
involved (site, profile) lock is held, taken in sorted order, while the browser runs.

Teardown: the browser is stopped on every path; `Chromium.stop()` ends with a synchronous kill and
reap, so cancellation or KeyboardInterrupt while it closes still leaves nothing behind.
"""
from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from harvestkit.cache import Cookie, SessionRecord, SessionStore

from .browser import Chromium, LaunchOptions
from .engine import (
    Job,
    PageHook,
    TabHarvest,
    browser_died,
    connection_lost,
    seed_cookies,
)
from .errors import HarvestError, HarvestTimeout, NoDisplay
from .profiles import profile_dir, profile_locks
from .progress import Reporter
from .proxyauth import browser_proxy
from .sites import recipe_for
from .stealth import profile_fingerprint
from .trust import spki_pins

Outcome = SessionRecord | HarvestError


def has_display() -> bool:
    """Whether a visible browser window can be opened here."""
    if sys.platform == "darwin" or sys.platform.startswith("win"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def directory_site(sites: Sequence[str]) -> str:
    """Whose profile directory a browser for `sites` uses (see the module's docstring)."""
    ordered = sorted(sites)
    return next((s for s in ordered if recipe_for(s).needs_sign_in), ordered[0])


async def _seeds(cache: SessionStore, sites: Sequence[str], profile: str) -> list[Cookie]:
    now = time.time()
    cookies: list[Cookie] = []
    for site in sites:
        record = await cache.get(site, profile)
        if record is not None:
            cookies.extend(c for c in record.cookies if not c.is_expired(now) and recipe_for(site).keeps(c))
    return cookies


async def _new_tab(chromium: Chromium) -> Any:
    """Another tab (nodriver's own `get(new_tab=True)` asks for begin-frame control, which stalls pages)."""
    from nodriver import cdp

    target_id = await chromium.browser.send(cdp.target.create_target("about:blank"))
    await chromium.browser.update_targets()
    return next(t for t in chromium.browser.targets if t.target.target_id == target_id)


async def run_browser(
    sites: Sequence[str],
    *,
    profile: str,
    headless: bool,
    proxy: str | None,
    deadline: float,
    report: Reporter,
    cache: SessionStore,
    interactive: bool = False,
    source: str = "harvest",
    on_page: PageHook | None = None,
) -> dict[str, Outcome]:
    """Harvest `sites` in one browser, each in a tab of its own, concurrently.

    Per-site failures (`HarvestError`) are returned in the dict; a failure of the browser itself
    (or of the locks) is raised.
    """
    label = "+".join(sites)
    if not headless and not has_display():
        raise NoDisplay(label, profile)
    async with profile_locks([(site, profile) for site in sites], deadline), browser_proxy(proxy) as local_proxy:
        recipes = [recipe_for(site) for site in sites]
        hosts = tuple(dict.fromkeys(host for recipe in recipes for host in recipe.hosts))
        pins = await spki_pins(os.environ.get("HARVESTKIT_CA_BUNDLE"), hosts, local_proxy)
        directory = await asyncio.to_thread(profile_dir, directory_site(sites), profile)
        fingerprint = await asyncio.to_thread(profile_fingerprint, profile)
        chromium = Chromium(
            LaunchOptions(
                headless=headless, user_data_dir=directory, proxy=local_proxy, spki_pins=pins, fingerprint=fingerprint
            )
        )
        try:
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation (Ctrl-C)
                # that arrives as the awaited start finishes, so the harvest would carry on
                async with asyncio.timeout(max(deadline - time.monotonic(), 0.0)):
                    await chromium.start()
                    report("browser-started", label, f"{chromium.version}, pid {chromium.pid}")
                    await seed_cookies(chromium, await _seeds(cache, sites, profile))
                tabs = [chromium.browser.main_tab]
                for _ in sites[1:]:
                    tabs.append(await _new_tab(chromium))
            except TimeoutError:
                raise HarvestTimeout(f"{label}: the browser did not start in time", site=label, profile=profile) from None
            except Exception as exc:  # the browser died before its tabs were ready
                if chromium.pid is None or not connection_lost(exc):
                    raise
                raise await browser_died(chromium, label, exc) from None
            jobs = [
                Job(recipe, profile, deadline, report, interactive, proxy, source, on_page) for recipe in recipes
            ]
            results = await asyncio.gather(
                *(TabHarvest(chromium, tab, job).run() for tab, job in zip(tabs, jobs)), return_exceptions=True
            )
        finally:
            await chromium.stop()
            report("browser-stopped", label)
    outcomes: dict[str, Outcome] = {}
    for site, result in zip(sites, results):
        if isinstance(result, (SessionRecord, HarvestError)):
            outcomes[site] = result
        else:
            raise result
    return outcomes
