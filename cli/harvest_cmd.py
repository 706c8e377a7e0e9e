"""`harvestkit harvest`, `login` and `refresh`: getting sessions into the cache.

On a terminal each step of a harvest is shown live with its time; otherwise one summary line
per site. `refresh` is the cron entry point: it harvests only what is missing, expires within the
margin or is older than max-age, runs one instance at a time and never prompts.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from harvestkit.cache import CacheLockTimeout, SessionRecord, SessionStore, open_store
from harvestkit.cache.locks import CacheLock
from harvestkit.cache.paths import default_root, ensure_private_dir

from .common import (
    FAILURE,
    NEEDS_HUMAN,
    OK,
    PARTIAL,
    SITE_NAMES,
    Style,
    duration_arg,
    human_duration,
    needs_human,
    print_json,
    report_error,
    command,
)
from .record_cmd import recorded


def add_parsers(commands: Any) -> None:
    harvest = commands.add_parser("harvest", help="harvest sessions in a browser (default: every site)")
    harvest.add_argument("sites", nargs="*", metavar="SITE", help=f"one of {', '.join(SITE_NAMES)}")
    harvest.add_argument("--profile", action="append", default=None,
                         help="browser and cache profile; repeat it for several sessions (default: the config's pool members, else default)")  # fmt: skip
    _browser_options(harvest, timeout=60, profile=False)
    harvest.add_argument("--headful", action="store_true", help="show the browser window")
    harvest.add_argument("--json", action="store_true", help="print the results as JSON")
    harvest.add_argument("--record", metavar="FILE", default=None, help="also write a scrubbed HAR of the traffic")
    harvest.set_defaults(run=run_harvest)

    login = commands.add_parser("login", help="sign in once in a visible browser, then capture the session")
    login.add_argument("site", metavar="SITE", choices=SITE_NAMES)
    _browser_options(login, timeout=600)
    login.add_argument("--json", action="store_true", help="print the result as JSON")
    login.set_defaults(run=run_login)

    refresh = commands.add_parser("refresh", help="renew what is missing or about to expire (for cron)")
    refresh.add_argument("sites", nargs="*", metavar="SITE", help="default: the sites with a session")
    refresh.add_argument("--profile", default=None, help="default: each site's pool members in the config, else default")
    refresh.add_argument("--margin", type=duration_arg, default=600.0, help="renew what expires within this (10m)")
    refresh.add_argument("--max-age", type=duration_arg, default=6 * 3600.0, help="renew what is older (6h)")
    refresh.add_argument("--timeout", type=duration_arg, default=120.0, help="per browser run (120s)")
    refresh.add_argument("--wait", action="store_true", help="wait for a running refresh instead of exiting")
    refresh.add_argument("--json", action="store_true", help="JSON summary (the default without a terminal)")
    refresh.set_defaults(run=run_refresh)


def _browser_options(parser: argparse.ArgumentParser, timeout: float, profile: bool = True) -> None:
    if profile:
        parser.add_argument("--profile", default="default", help="browser and cache profile (default)")
    parser.add_argument("--proxy", default=None, help="proxy URL (default: HARVESTKIT_PROXY)")
    parser.add_argument("--timeout", type=duration_arg, default=timeout, help=f"seconds ({timeout:g})")


def _check_sites(sites: list[str]) -> list[str]:
    unknown = [s for s in sites if s not in SITE_NAMES]
    if unknown:
        raise SystemExit(f"harvestkit: unknown site {unknown[0]!r}; choose from {', '.join(SITE_NAMES)}")
    return list(dict.fromkeys(sites))


class ProgressPrinter:
    """Live progress on a terminal; silence otherwise (the caller prints a summary)."""

    def __init__(self) -> None:
        self.live = sys.stderr.isatty()
        self.style = Style(sys.stderr)

    def __call__(self, event: Any) -> None:
        if self.live:
            detail = f"  {self.style.dim(event.detail)}" if event.detail else ""
            print(f"  {event.elapsed:6.2f} s  {event.site:<10} {event.step}{detail}", file=sys.stderr, flush=True)


def _summary(record: SessionRecord) -> dict[str, Any]:
    return {
        "site": record.site,
        "profile": record.profile,
        "cookies": len(record.cookies),
        "api_key": bool(record.api_key),
        "expires_in": None if record.expires_at is None else round(record.expires_at - time.time()),
        "user_agent": record.user_agent,
    }


def _line(site: str, outcome: SessionRecord | BaseException, seconds: float, style: Style) -> str:
    if isinstance(outcome, SessionRecord):
        info = _summary(outcome)
        key = ", demo key" if info["api_key"] else ""
        return f"{style.good('ok')}   {site}: {info['cookies']} cookies{key}, expires in {human_duration(info['expires_in'])} ({seconds:.2f} s)"
    return f"{style.bad('fail')} {site}: {outcome}"


def _outcome_code(outcomes: dict[str, SessionRecord | BaseException]) -> int:
    failed = [o for o in outcomes.values() if not isinstance(o, SessionRecord)]
    if not failed:
        return OK
    if len(failed) < len(outcomes):
        return PARTIAL
    return NEEDS_HUMAN if all(needs_human(o) for o in failed) else FAILURE


def _print_outcomes(outcomes: dict[str, SessionRecord | BaseException], seconds: float, as_json: bool) -> None:
    if as_json:
        print_json({site: _summary(o) if isinstance(o, SessionRecord) else {"error": str(o), "needs_human": needs_human(o)} for site, o in outcomes.items()})
        return
    style = Style(sys.stdout)
    for site, outcome in outcomes.items():
        print(_line(site, outcome, seconds, style))


def _targets(sites: list[str], profiles: list[str] | None, proxy: str | None) -> dict[tuple[str, str | None], list[str]]:
    """(profile, proxy) -> the sites to harvest with it: the named profiles, else each site's
    pool members in the config file (each through its proxy), else the default profile.
    ``--proxy`` wins over a member's proxy."""
    from harvestkit.common.config import load_config

    pools = load_config().pools
    targets: dict[tuple[str, str | None], list[str]] = {}
    for site in sites:
        members = dict(pools[site].members) if site in pools else {}
        chosen = profiles or list(members) or ["default"]
        for profile in dict.fromkeys(chosen):
            targets.setdefault((profile, proxy or members.get(profile)), []).append(site)
    return targets


async def _harvest_all(
    targets: dict[tuple[str, str | None], list[str]], args: argparse.Namespace, cache: SessionStore, *, named: bool | None = None
) -> dict[str, SessionRecord | BaseException]:
    """Each target's harvest in turn (a browser per profile), keyed ``site/profile`` when
    ``named`` (default: when several profiles are harvested), else ``site``."""
    if named is None:
        named = len({profile for profile, _ in targets}) > 1
    outcomes: dict[str, SessionRecord | BaseException] = {}
    for (profile, proxy), sites in targets.items():
        args.profile, args.proxy = profile, proxy
        try:
            found = await _harvest(sites, args, cache)
        except Exception as exc:  # noqa: BLE001 - this profile's browser failed; the others go on
            if len(targets) == 1:
                raise
            found = {site: exc for site in sites}
        outcomes.update({f"{site}/{profile}" if named else site: o for site, o in found.items()})
    return outcomes


async def _harvest(sites: list[str], args: argparse.Namespace, cache: SessionStore) -> dict[str, SessionRecord | BaseException]:
    from harvestkit.harvester import harvest, harvest_many

    common = {"profile": args.profile, "proxy": args.proxy, "timeout": args.timeout, "cache": cache, "progress": ProgressPrinter()}
    headless = not getattr(args, "headful", False)
    if len(sites) == 1:
        try:
            return {sites[0]: await harvest(sites[0], headless=headless, **common)}
        except Exception as exc:  # noqa: BLE001 - reported per site
            return {sites[0]: exc}
    return dict(await harvest_many(sites, headless=headless, **common))


@command
def run_harvest(args: argparse.Namespace) -> int:
    sites = _check_sites(args.sites) or list(SITE_NAMES)
    started = time.monotonic()
    try:
        targets = _targets(sites, args.profile, args.proxy)
        with recorded(args.record):
            outcomes = asyncio.run(_harvest_all(targets, args, open_store()))
    except Exception as exc:  # noqa: BLE001 - a failure of the whole browser
        return report_error(exc)
    _print_outcomes(outcomes, time.monotonic() - started, args.json)
    return _outcome_code(outcomes)


@command
def run_login(args: argparse.Namespace) -> int:
    from harvestkit.harvester import login

    if not args.json:
        print(f"harvestkit: opening a browser window: sign in to {args.site} there; this command waits.", file=sys.stderr)
    started = time.monotonic()
    try:
        record = asyncio.run(login(args.site, profile=args.profile, proxy=args.proxy, timeout=args.timeout, progress=ProgressPrinter()))
    except Exception as exc:  # noqa: BLE001
        return report_error(exc)
    _print_outcomes({args.site: record}, time.monotonic() - started, args.json)
    return OK


# -- refresh ----------------------------------------------------------------------------------------

def _due(cache: SessionStore, sites: list[str], profile: str, margin: float, max_age: float) -> tuple[list[str], dict[str, str]]:
    """The sites to harvest, and why each of the others is left alone."""
    due, fresh = [], {}
    for site in sites:
        record = cache.get_sync(site, profile)
        stale = record is None or time.time() - record.harvested_at > max_age  # whatever its expiry
        if stale or not cache.is_fresh(record, margin, max_age=max_age):
            due.append(site)
        else:
            left = None if record.expires_at is None else record.expires_at - time.time()
            fresh[site] = f"fresh, expires in {human_duration(left)}"
    return due, fresh


@command
def run_refresh(args: argparse.Namespace) -> int:
    from harvestkit.common.config import load_config

    cache = open_store()
    pooled = set() if args.profile else set(load_config().pools)
    held = {r.site for r in cache.list_sync() if r.profile == (args.profile or "default")}
    sites = _check_sites(args.sites) or sorted((held | pooled) & set(SITE_NAMES)) or list(SITE_NAMES)
    targets = _targets(sites, [args.profile] if args.profile else None, None)
    as_json = args.json or not sys.stdout.isatty()
    lock_path = default_root().parent / "refresh.lock"
    if not lock_path.parent.exists():
        ensure_private_dir(lock_path.parent)  # harvestkit's data folder: created private
    lock = CacheLock(lock_path, -1 if args.wait else 0)  # a 0600 file, typed errors
    try:
        lock.acquire()
    except CacheLockTimeout:
        message = "another harvestkit refresh is running; nothing to do (use --wait to wait for it)"
        print_json({"status": "busy", "message": message}) if as_json else print(message)
        return OK
    try:
        several = len({profile for profile, _ in targets}) > 1
        due: dict[tuple[str, str | None], list[str]] = {}
        fresh: dict[str, str] = {}
        for (profile, proxy), group in targets.items():
            found, left = _due(cache, group, profile, args.margin, args.max_age)
            if found:
                due[(profile, proxy)] = found
            fresh.update({f"{site}/{profile}" if several else site: why for site, why in left.items()})
        outcomes: dict[str, SessionRecord | BaseException] = {}
        started = time.monotonic()
        if due:
            args.headful = False
            try:
                outcomes = asyncio.run(_harvest_all(due, args, cache, named=several))
            except Exception as exc:  # noqa: BLE001
                outcomes = {site: exc for group in due.values() for site in group}
        code = _outcome_code(outcomes) if outcomes else OK
        if as_json:
            print_json({
                "status": "ok" if code == OK else "partial" if code == PARTIAL else "failed",
                "refreshed": [s for s, o in outcomes.items() if isinstance(o, SessionRecord)],
                "fresh": fresh,
                "failed": {s: str(o) for s, o in outcomes.items() if not isinstance(o, SessionRecord)},
                "needs_human": [s for s, o in outcomes.items() if not isinstance(o, SessionRecord) and needs_human(o)],
                "seconds": round(time.monotonic() - started, 3),
            })
        else:
            for site, why in fresh.items():
                print(f"ok   {site}: {why}")
            _print_outcomes(outcomes, time.monotonic() - started, False)
        return code
    finally:
        lock.release()
