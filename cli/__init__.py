"""The `harvestkit` command."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from importlib.metadata import PackageNotFoundError, version

from . import cache_cmd, chat_cmd, completion_cmd, demo, doctor_cmd, harvest_cmd, record_cmd, sandbox_cmd, serve_cmd
from .common import USAGE

NO_CONFIG_COMMANDS = ("doctor", "completion")  # they run whatever the config says (doctor reports it)


def _version() -> str:
    try:
        return version("harvestkit")
    except PackageNotFoundError:  # pragma: no cover - run from a checkout without install
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harvestkit",
        description="Harvest playground sessions in a real browser and reuse them from code.",
    )
    parser.add_argument("--version", action="version", version=f"harvestkit {_version()}")
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
    completion_cmd.add_parser(commands)
    return parser


def _apply_config(command: str) -> int | None:
    """The config file's default proxy for every command (HARVESTKIT_PROXY still wins); a
    broken config file stops the command with the fix, in one line."""
    from harvestkit.common.config import ConfigError, load_config

    if command in NO_CONFIG_COMMANDS:
        return None
    try:
        config = load_config(os.environ.get("HARVESTKIT_CONFIG"))
    except ConfigError as exc:
        print(f"harvestkit: {exc}", file=sys.stderr)
        return USAGE
    if config.proxy and not os.environ.get("HARVESTKIT_PROXY"):
        os.environ["HARVESTKIT_PROXY"] = config.proxy
    return None


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
    if args.command != "serve" and (failed := _apply_config(args.command)) is not None:
        return failed  # serve reads its own --config
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130
