"""`harvestkit status` and `harvestkit cache path|show|clear|export|import`.

Secrets stay redacted unless `cache show --reveal` asks for them; `cache export` writes cookie
values on purpose (that is what it is for) and says so on stderr when stdout is a terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from harvestkit.cache import FORMATS, SessionRecord, SessionStore, open_store
from harvestkit.cache.redact import redact_url

from . import record_cmd
from .common import (
    command,
    FAILURE,
    OK,
    SITE_NAMES,
    USAGE,
    human_duration,
    print_json,
    report_error,
    table,
)


def add_parsers(commands: Any) -> None:
    status = commands.add_parser("status", help="the cached sessions, secrets redacted")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(run=run_status)

    cache = commands.add_parser("cache", help="inspect and manage the auth cache")
    actions = cache.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("path", help="where the cache lives").set_defaults(run=run_path)

    show = actions.add_parser("show", help="one session's record (redacted)")
    show.add_argument("site", choices=SITE_NAMES)
    show.add_argument("--profile", default="default")
    show.add_argument("--reveal", action="store_true", help="print the secrets too")
    show.add_argument("--json", action="store_true", help="print JSON (what show always prints)")
    show.set_defaults(run=run_show)

    clear = actions.add_parser("clear", help="delete sessions")
    clear.add_argument("site", nargs="?", choices=SITE_NAMES)
    clear.add_argument("--profile", default="default")
    clear.add_argument("--all", action="store_true", help="every site and profile")
    clear.add_argument(
        "--browser-profile", action="store_true",
        help="also wipe the browser profile (where the sign-in lives: `harvestkit login` is needed again)",
    )  # fmt: skip
    clear.set_defaults(run=run_clear)

    export = actions.add_parser("export", help="a session's cookies as cookies.txt or JSON (stdout)")
    export.add_argument("site", choices=SITE_NAMES)
    export.add_argument("--profile", default="default")
    export.add_argument("--format", choices=FORMATS, default="netscape", help="netscape (cookies.txt), extension or cdp (JSON)")
    export.set_defaults(run=run_export)

    load = actions.add_parser("import", help="a session from a file (cookies.txt, cookie JSON or a HAR; '-' reads stdin)")
    load.add_argument("site", choices=SITE_NAMES)
    load.add_argument("file")
    load.add_argument("--profile", default="default")
    load.add_argument("--format", choices=(*FORMATS, "har"), default=None, help="default: detected (.har files: har)")
    load.add_argument("--replace", action="store_true", help="drop the cookies held before")
    load.set_defaults(run=run_import)


def _pool_rows(cache: SessionStore) -> list[dict[str, Any]]:
    """Each member of the config file's pools: its session, cooldown and budget as shared in the store."""
    import asyncio

    from harvestkit.client.session_pool import pools_from_config
    from harvestkit.common.config import load_config

    pools = pools_from_config(load_config().pools)

    async def synced() -> list[dict[str, Any]]:
        try:
            for pool in pools:
                await pool.sync(cache, force=True)
        finally:
            await cache.aclose()  # this loop ends here: its connections with it
        return [row.as_dict() for pool in pools for row in pool.status()]

    return asyncio.run(synced()) if pools else []


def _pool_table(rows: list[dict[str, Any]]) -> str:
    body = []
    for r in rows:
        cooling = f"until {time.strftime('%H:%M:%S', time.localtime(time.time() + r['cooling_for']))} ({r['reason']})" if r["cooling_for"] else "-"
        limits = ", ".join(f"{name} {left:g}" for name, left in sorted(r["limits"].items())) or "-"
        state = "fresh" if r["fresh"] else "expired" if r["expires_in"] is not None and r["expires_in"] <= 0 else "missing or stale"
        body.append([r["site"], r["profile"], r["proxy"] or "-", state, cooling, f"{r['budget_left']:.0%}", limits])
    return table(body, ["POOL", "PROFILE", "PROXY", "SESSION", "COOLING DOWN", "BUDGET LEFT", "REMAINING"])


def _row(record: SessionRecord, cache: SessionStore) -> dict[str, Any]:
    now = time.time()
    return {
        "site": record.site,
        "profile": record.profile,
        "age": round(now - record.harvested_at),
        "expires_in": None if record.expires_at is None else round(record.expires_at - now),
        "fresh": cache.is_fresh(record),
        "api_key": bool(record.api_key),
        "cookies": len(record.cookies),
        "proxy": redact_url(record.proxy),
        "source": record.source,
    }


@command
def run_status(args: argparse.Namespace) -> int:
    try:
        cache = open_store()
        rows = [_row(r, cache) for r in cache.list_sync()]
        pooled = _pool_rows(cache)
    except Exception as exc:  # noqa: BLE001
        return report_error(exc)
    if args.json:
        print_json({"sessions": rows, "pools": pooled} if pooled else rows)
        return OK
    if pooled:
        print(_pool_table(pooled) + "\n")
    if not rows:
        print(f"no sessions in {cache.location}; run `harvestkit harvest` (or `harvestkit login cerebras`)")
        return OK
    body = [
        [r["site"], r["profile"], human_duration(r["age"]), human_duration(r["expires_in"]), "yes" if r["fresh"] else "no",
         "yes" if r["api_key"] else "no", str(r["cookies"]), r["proxy"] or "-"]
        for r in rows
    ]  # fmt: skip
    print(table(body, ["SITE", "PROFILE", "AGE", "EXPIRES IN", "FRESH", "KEY", "COOKIES", "PROXY"]))
    return OK


@command
def run_path(args: argparse.Namespace) -> int:
    print(open_store().location)
    return OK


@command
def run_show(args: argparse.Namespace) -> int:
    record = open_store().get_sync(args.site, args.profile)
    if record is None:
        print(f"harvestkit: no {args.site} session for profile {args.profile!r}", file=sys.stderr)
        return FAILURE
    print(json.dumps(record.to_dict() if args.reveal else record.redacted(), indent=2, ensure_ascii=False))
    return OK


@command
def run_clear(args: argparse.Namespace) -> int:
    from .clearing import clear

    if args.all == bool(args.site):
        print("harvestkit: name a SITE, or pass --all", file=sys.stderr)
        return USAGE
    for line in clear(open_store(), None if args.all else args.site, args.profile, args.browser_profile):
        print(line)
    return OK


@command
def run_export(args: argparse.Namespace) -> int:
    cache = open_store()
    if cache.get_sync(args.site, args.profile) is None:
        print(f"harvestkit: no {args.site} session for profile {args.profile!r}", file=sys.stderr)
        return FAILURE
    if sys.stdout.isatty():
        print("harvestkit: these are live session cookies; keep them private", file=sys.stderr)
    sys.stdout.write(cache.export_cookies(args.site, args.format, args.profile))
    return OK


@command
def run_import(args: argparse.Namespace) -> int:
    if record_cmd.is_har(args.file, args.format):
        return record_cmd.run_import_har(args)
    from harvestkit.cache.limits import decode_cookie_file
    from harvestkit.harvester.sites import recipe_for

    name = "stdin" if args.file == "-" else args.file
    try:
        with contextlib.nullcontext(sys.stdin.buffer) if args.file == "-" else Path(args.file).open("rb") as stream:
            text = decode_cookie_file(stream, name)
    except OSError as exc:
        print(f"harvestkit: cannot read {name}: {exc.strerror}", file=sys.stderr)
        return FAILURE
    domains = recipe_for(args.site).cookie_domains
    record = open_store().import_cookies(args.site, text, args.format, args.profile, replace=args.replace, domains=domains)
    print(f"imported: {args.site}/{args.profile} now holds {len(record.cookies)} cookies")
    return OK
