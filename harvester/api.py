"""The harvester's public functions: harvest, login and harvest_many, async and sync.

`timeout` bounds the whole call: waiting for another process's harvest of the same session,
for the profile's lock, the browser's start and the site. `proxy=None` means HARVESTKIT_PROXY
when set, else a direct connection (`proxy=""` forces a direct one); HARVESTKIT_CA_BUNDLE, when
set, is trusted by the browser (see `harvestkit.harvester.trust`).
"""
from __future__ import annotations

import os
import time
from collections.abc import Sequence

from harvestkit.cache import CacheLockTimeout, SessionRecord, SessionStore, open_store
from harvestkit.cache.record import check_name
from harvestkit.common.syncrun import sync_twin

from .engine import PageHook
from .errors import HarvestError, ProfileInUse
from .launch import run_browser
from .progress import ProgressFn, Reporter
from .sites import recipe_for


def _proxy(proxy: str | None) -> str | None:
    if proxy is None:
        proxy = os.environ.get("HARVESTKIT_PROXY")
    return proxy or None


def _check(site: str, profile: str) -> None:
    recipe_for(site)
    check_name("profile", profile)


async def harvest(
    site: str,
    *,
    profile: str = "default",
    headless: bool = True,
    proxy: str | None = None,
    timeout: float = 60,
    cache: SessionStore | None = None,
    progress: ProgressFn | None = None,
    force: bool = True,
    stale: float | None = None,
) -> SessionRecord:
    """Harvest `site` with a browser on the (site, profile) browser profile; return the saved record.

    Single-flight through `cache.refresh`: concurrent callers (threads or processes) wait for one
    harvest and share its record. `force=False` returns a still-fresh cached record without a
    browser. `stale` (the `harvested_at` of a record the caller saw refused) returns a record
    harvested since then, by any caller, without a browser. Raises `HarvestError` subclasses (`SignedOut`, `ChallengeNeedsHuman`, `HarvestTimeout`,
    `SiteUnreachable`, `ProfileInUse`...) and `BrowserError` subclasses.
    """
    _check(site, profile)
    cache = cache or open_store()
    proxy = _proxy(proxy)
    report = Reporter(progress)
    deadline = report.started + timeout
    ran = False

    async def harvest_now() -> SessionRecord:
        nonlocal ran
        ran = True
        outcome = (
            await run_browser(
                [site], profile=profile, headless=headless, proxy=proxy, deadline=deadline, report=report, cache=cache
            )
        )[site]
        if isinstance(outcome, HarvestError):
            raise outcome
        return outcome

    try:
        record = await cache.refresh(
            site, harvest_now, profile=profile, force=force, timeout=max(deadline - time.monotonic(), 0.0), stale=stale
        )
    except CacheLockTimeout as exc:
        raise ProfileInUse(site, profile, exc.holder_pid, report.elapsed()) from None
    report("saved" if ran else "reused", site, "" if ran else "harvested by another caller or still fresh")
    return record


async def login(
    site: str,
    *,
    profile: str = "default",
    proxy: str | None = None,
    timeout: float = 600,
    cache: SessionStore | None = None,
    progress: ProgressFn | None = None,
    headless: bool = False,
    on_page: PageHook | None = None,
) -> SessionRecord:
    """Open a visible browser on the (site, profile) profile and wait for the user to sign in
    (or solve a challenge); then capture like `harvest` and save the record with source "login".

    Raises `NoDisplay` where no visible browser can be opened. `headless` and `on_page` are for
    tests and CI: `on_page(tab)` is awaited with the nodriver tab once the site's page is open, and
    may sign in through it, acting as the user.
    """
    _check(site, profile)
    cache = cache or open_store()
    proxy = _proxy(proxy)
    report = Reporter(progress)
    outcome = (
        await run_browser(
            [site],
            profile=profile,
            headless=headless,
            proxy=proxy,
            deadline=report.started + timeout,
            report=report,
            cache=cache,
            interactive=True,
            source="login",
            on_page=on_page,
        )
    )[site]
    if isinstance(outcome, HarvestError):
        raise outcome
    await cache.put(outcome)
    report("saved", site)
    return outcome


async def harvest_many(
    sites: Sequence[str],
    *,
    profile: str = "default",
    headless: bool = True,
    proxy: str | None = None,
    timeout: float = 60,
    cache: SessionStore | None = None,
    progress: ProgressFn | None = None,
    force: bool = True,
) -> dict[str, SessionRecord | HarvestError]:
    """Harvest several sites in ONE browser, a tab each, concurrently; save each record.

    Returns site -> the saved record, or the `HarvestError` of that site. A failure of the whole
    browser (`BrowserError`, `ProfileInUse`, `NoDisplay`) is raised. With `force=False` a site with
    a fresh cached record is not harvested. Not single-flight like `harvest` (the profile locks
    still keep one browser per profile); see `harvestkit.harvester.launch` for the profile policy.
    """
    sites = list(dict.fromkeys(sites))
    for site in sites:
        _check(site, profile)
    cache = cache or open_store()
    report = Reporter(progress)
    results: dict[str, SessionRecord | HarvestError] = {}
    for site in sites:
        record = None if force else await cache.get(site, profile)
        if record is not None and cache.is_fresh(record):
            results[site] = record
            report("reused", site, "still fresh")
    todo = [site for site in sites if site not in results]
    if todo:
        outcomes = await run_browser(
            todo,
            profile=profile,
            headless=headless,
            proxy=_proxy(proxy),
            deadline=report.started + timeout,
            report=report,
            cache=cache,
        )
        for site, outcome in outcomes.items():
            if isinstance(outcome, SessionRecord):
                await cache.put(outcome)
                report("saved", site)
            results[site] = outcome
    return {site: results[site] for site in sites}


harvest_sync = sync_twin(harvest)
login_sync = sync_twin(login)
