"""`harvestkit serve`: the OpenAI-compatible gateway in the foreground, until SIGINT or SIGTERM."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from typing import Any

KEY_VARIABLE = "HARVESTKIT_GATEWAY_KEY"


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "serve",
        help="serve an OpenAI-compatible API (/v1/chat/completions, /v1/models) on the harvested sessions",
        description="Serve an OpenAI-compatible API in front of the Cerebras and Cloudflare sessions. "
        "Models are 'cerebras/<id>', 'cloudflare/<id>', or a bare id only one of them offers. "
        f"Listening beyond loopback needs an API key, best given in {KEY_VARIABLE}.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0: any free port)")
    parser.add_argument(
        "--api-key",
        help=f"key clients must send as 'Authorization: Bearer <key>' (default: ${KEY_VARIABLE}; "
        "an argument is visible to other users in ps, the variable is not)",
    )
    parser.add_argument("--profile", help="the harvested session profile to use (default: default)")
    parser.add_argument("--quiet", action="store_true", help="no access log on stderr")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        from harvestkit.gateway import InsecureBind, check_bind
        from harvestkit.gateway.server import ACCESS_LOG
    except ImportError as exc:
        print(f"harvestkit serve needs the gateway extra: pip install 'harvestkit[gateway]' ({exc})", file=sys.stderr)
        return 1
    key = args.api_key or os.environ.get(KEY_VARIABLE) or None
    try:
        check_bind(args.host, key)
    except InsecureBind as exc:
        print(f"harvestkit serve: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        ACCESS_LOG.setLevel(logging.INFO)
    return asyncio.run(_serve(args, key))


async def _serve(args: argparse.Namespace, key: str | None) -> int:
    from harvestkit.gateway import serve

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with serve(args.host, args.port, api_key=key, profile=args.profile) as url:
            guard = "clients must send the API key" if key else "no API key"
            print(f"harvestkit serve: OpenAI-compatible API at {url}/v1 ({guard}); Ctrl-C stops it",
                  file=sys.stderr, flush=True)  # fmt: skip
            await stop.wait()
            for sig in (signal.SIGINT, signal.SIGTERM):  # a second signal stops at once
                loop.remove_signal_handler(sig)
            print("harvestkit serve: stopping (finishing the requests in flight)", file=sys.stderr, flush=True)
    except OSError as exc:
        print(f"harvestkit serve: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0
