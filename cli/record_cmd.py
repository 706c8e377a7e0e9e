"""HAR files: `harvestkit cache import SITE capture.har` and `harvestkit record scrub IN -o OUT`.

A HAR that a browser's DevTools saved holds the whole signed-in session (cookies, the user agent
and client hints, the demo key's response); `cache import` takes it as a harvest would. `record
scrub` replaces every secret of a HAR by a stable placeholder, so it can go with a bug report.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harvestkit.cache import SessionRecord, open_store
from harvestkit.cache.limits import check_count
from harvestkit.common.har import HarFormatError, entries_of, load_document, load_har
from harvestkit.common.recording import recording, write_private
from harvestkit.common.scrub import scrub_har

from .common import FAILURE, OK, report_error


def add_parser(commands: Any) -> None:
    record = commands.add_parser("record", help="HAR recordings: make one safe to share")
    actions = record.add_subparsers(dest="action", metavar="ACTION", required=True)
    scrub = actions.add_parser("scrub", help="replace every secret of a HAR file by a stable placeholder")
    scrub.add_argument("file", help="the HAR file ('-' reads stdin)")
    scrub.add_argument("-o", "--output", required=True, help="where to write the scrubbed HAR ('-' for stdout)")
    scrub.set_defaults(run=run_scrub)


@contextlib.contextmanager
def recorded(path: str | None) -> Iterator[None]:
    """`--record FILE`: what runs inside is recorded, and written scrubbed to FILE afterwards (also
    when it failed: a recording of a failure is what a bug report needs)."""
    if path is None:
        yield
        return
    with recording() as trace:
        try:
            yield
        finally:
            try:
                count = trace.save(path)
            except OSError as exc:
                print(f"harvestkit: cannot write the recording {path}: {exc.strerror}", file=sys.stderr)
            else:
                print(f"recorded: {path} ({count} requests, secrets replaced by placeholders)", file=sys.stderr)


def is_har(path: str, fmt: str | None) -> bool:
    """Whether `cache import` was given a HAR (by --format har or the file name)."""
    return fmt == "har" or (fmt is None and path.lower().endswith(".har"))


def _entries(path: str) -> list[Any]:
    return load_har(sys.stdin.buffer if path == "-" else path)


def run_import_har(args: argparse.Namespace) -> int:
    from harvestkit.harvester.har import session_from_har
    from harvestkit.harvester.sites import recipe_for

    try:
        found = session_from_har(_entries(args.file), recipe_for(args.site), args.profile)
    except OSError as exc:
        print(f"harvestkit: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return FAILURE
    except HarFormatError as exc:
        print(f"harvestkit: {args.file}: {exc}", file=sys.stderr)
        return FAILURE

    def merge(held: SessionRecord | None) -> SessionRecord:
        new = found.record
        if held is None or args.replace:
            return new
        check_count(args.site, args.profile, len(held.cookies) + len(new.cookies))
        essential = new.extra.get("essential_cookies", [])
        merged = dataclasses.replace(held, cookies=list(held.cookies)).merge_cookies(new.cookies, essential=essential)
        return dataclasses.replace(
            merged,
            user_agent=new.user_agent or held.user_agent,
            client_hints=new.client_hints or held.client_hints,
            api_key=new.api_key or held.api_key,
            api_key_expires_at=new.api_key_expires_at if new.api_key else held.api_key_expires_at,
            source="import",
            extra={**held.extra, **new.extra},
        )

    try:
        record = open_store().update_sync(args.site, merge, args.profile)
    except Exception as exc:  # noqa: BLE001
        return report_error(exc)
    assert record is not None
    got = [f"{len(record.cookies)} cookies"]
    if record.user_agent:
        got.append("the user agent")
    if record.api_key:
        got.append("the demo key")
    ignored = f"; {found.ignored} entries of other sites ignored" if found.ignored else ""
    if found.refused:
        ignored += f"; refused {found.refused}"
    print(f"imported: {args.site}/{args.profile} now holds {', '.join(got)} (from {found.used} requests{ignored})")
    return OK


def run_scrub(args: argparse.Namespace) -> int:
    try:
        document = load_document(sys.stdin.buffer if args.file == "-" else args.file)
        entries_of(document)  # the same checks and typed errors as an import
        scrubbed = scrub_har(document)
    except OSError as exc:
        print(f"harvestkit: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return FAILURE
    except HarFormatError as exc:
        print(f"harvestkit: {args.file}: {exc}", file=sys.stderr)
        return FAILURE
    text = json.dumps(scrubbed, ensure_ascii=False, indent=2) + "\n"
    if args.output == "-":
        sys.stdout.write(text)
        return OK
    try:
        write_private(Path(args.output), text)
    except OSError as exc:
        print(f"harvestkit: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
        return FAILURE
    print(f"scrubbed: {args.output} (every cookie, key and token replaced by a placeholder)", file=sys.stderr)
    return OK
