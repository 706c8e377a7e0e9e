"""The `harvestkit` command."""
from __future__ import annotations

import argparse
import logging
import sys

from . import cache_cmd, chat_cmd, demo, doctor_cmd, harvest_cmd, record_cmd, sandbox_cmd, serve_cmd
from .common import USAGE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harvestkit",
        description="Harvest playground sessions in a real browser and reuse them from code.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more to stderr")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    harvest_cmd.add_parsers(commands)
    cache_cmd.add_parsers(commands)
    record_cmd.add_parser(commands)
    chat_cmd.add_parsers(commands)
    doctor_cmd.add_parsers(commands)
    serve_cmd.add_parser(commands)
    sandbox_cmd.add_parser(commands)
    demo.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return USAGE
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130
