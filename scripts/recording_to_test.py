#!/usr/bin/env python3
"""Turn a recording into a regression test, in one command:

    .venv/bin/python scripts/recording_to_test.py trace.har --name cf-challenge-2026-12

The HAR (a `--record` trace, or a browser's HAR) is scrubbed, replayed once in the sandbox to see
what harvestkit makes of it today, and checked in as tests/recordings/NAME.har with
tests/recordings/NAME.json, the expectations. tests/test_recordings.py replays every pair and
fails when harvestkit's result changes. For each site whose start page the recording holds, the
expectation is a harvest (cookie names, user agent, whether a demo key was captured); for each
chat request it holds, the chat's text and finish reason.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from recording_cases import expectations_for  # noqa: E402

from harvestkit.common.har import HarFormatError, entries_of, load_document  # noqa: E402
from harvestkit.common.scrub import scrub_har  # noqa: E402

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("har", type=Path)
    parser.add_argument("--name", required=True, help="file name of the case: lower-case letters, digits, . _ -")
    parser.add_argument("--force", action="store_true", help="replace a case of that name")
    args = parser.parse_args(argv)
    if not NAME.match(args.name):
        print(f"recording_to_test: --name {args.name!r}: use lower-case letters, digits, '.', '_' and '-'", file=sys.stderr)
        return 2
    target = ROOT / "tests" / "recordings"
    har_path, expect_path = target / f"{args.name}.har", target / f"{args.name}.json"
    if har_path.exists() and not args.force:
        print(f"recording_to_test: {har_path} exists (--force replaces it)", file=sys.stderr)
        return 1
    try:
        document = load_document(args.har)
        entries_of(document)  # the typed checks of every entry first
        document = scrub_har(document)
    except (OSError, HarFormatError) as exc:
        print(f"recording_to_test: {args.har}: {exc}", file=sys.stderr)
        return 1
    target.mkdir(exist_ok=True)
    har_path.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n")
    try:
        expected = expectations_for(har_path)
    except Exception as exc:  # noqa: BLE001 - whatever replay met, said in one line
        har_path.unlink()
        print(f"recording_to_test: replaying {args.har} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if not expected["cases"]:
        har_path.unlink()
        print("recording_to_test: the recording holds no start page and no chat request to replay", file=sys.stderr)
        return 1
    expect_path.write_text(json.dumps(expected, ensure_ascii=False, indent=1) + "\n")
    kinds = ", ".join(f"{c['kind']} {c['site']}" for c in expected["cases"])
    print(f"wrote {har_path.relative_to(ROOT)} and {expect_path.relative_to(ROOT)} ({kinds})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
