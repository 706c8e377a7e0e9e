"""`harvestkit sandbox`: run the local replica in the foreground and print how to use it."""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "sandbox",
        help="run the local replica of both services (for tests and offline use)",
        description="Serve the sandbox until interrupted; prints the shell lines that point "
        "harvestkit (and curl) at it.",
    )
    parser.add_argument("--port", type=int, default=0, help="proxy port on 127.0.0.1 (default: any free)")
    parser.add_argument(
        "--generation",
        default="agents",
        help="the Cloudflare protocol generation that is live (agents, ui-stream, data-stream, sse)",
    )
    parser.add_argument("--pace", type=float, default=0.0, help="seconds between streamed chunks")
    parser.add_argument("--replay", metavar="HAR", default=None, help="serve this recording's responses instead")
    parser.add_argument("--paced", action="store_true", help="with --replay: keep the recorded timing")
    parser.add_argument(
        "--proxy-auth", metavar="USER:PASS", default=None,
        help="authenticated mode: the proxy answers 407 without these credentials",
    )  # fmt: skip
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        from harvestkit.sandbox import Knobs, Sandbox
    except ImportError as exc:
        print(f"harvestkit sandbox needs the sandbox extra: pip install 'harvestkit[sandbox]' ({exc})", file=sys.stderr)
        return 1
    knobs = Knobs()
    try:
        knobs.apply({"generation": args.generation, "pace": args.pace})
    except ValueError as exc:
        print(f"harvestkit sandbox: {exc}", file=sys.stderr)
        return 2
    auth = None
    if args.proxy_auth is not None:
        user, sep, password = args.proxy_auth.partition(":")
        if not sep or not user or not password:
            print("harvestkit sandbox: --proxy-auth takes USER:PASS", file=sys.stderr)
            return 2
        auth = (user, password)
    from harvestkit.common.har import HarFormatError

    try:
        sandbox = Sandbox(port=args.port, knobs=knobs, proxy_auth=auth, replay=args.replay, paced=args.paced)
    except OSError as exc:
        print(f"harvestkit sandbox: cannot read {args.replay}: {exc.strerror}", file=sys.stderr)
        return 1
    except HarFormatError as exc:
        print(f"harvestkit sandbox: {args.replay}: {exc}", file=sys.stderr)
        return 1
    return asyncio.run(_serve(sandbox))


async def _serve(sandbox: Any) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await sandbox.start()
    except OSError as exc:
        print(f"harvestkit sandbox: cannot listen: {exc}", file=sys.stderr)
        return 1
    try:
        print(sandbox.exports(), flush=True)
        print(f"harvestkit sandbox: serving {', '.join(sandbox.hosts)}; Ctrl-C stops it", file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        await sandbox.stop()
    return 0
