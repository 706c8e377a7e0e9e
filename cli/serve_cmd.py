"""`harvestkit serve`: the OpenAI-compatible gateway in the foreground, until SIGINT or SIGTERM.

Settings come from the flags, then the environment, then the config file (`--config`,
`$HARVESTKIT_CONFIG` or the platform's config dir), then the defaults.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from harvestkit.common.config import STREAM_FLUSH_MS, ConfigError, Effective, check_stream_flush, effective, load_config

from .common import FAILURE, USAGE

KEY_VARIABLE = "HARVESTKIT_GATEWAY_KEY"
# curl_cffi performs each WebSocket handshake (and the cache its file I/O) in the loop's default
# executor, min(32, CPUs + 4) threads: on two cores, 6 Cloudflare chats could open at a time.
EXECUTOR_THREADS = 256  # started only as needed


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "serve",
        help="serve an OpenAI-compatible API (/v1/chat/completions, /v1/responses, /v1/models) on the harvested sessions",
        description="Serve an OpenAI-compatible API in front of the Cerebras and Cloudflare sessions. "
        "Models are 'cerebras/<id>', 'cloudflare/<id>', or a bare id only one of them offers. "
        f"Listening beyond loopback needs a key, best given in {KEY_VARIABLE} or HARVESTKIT_GATEWAY_KEYS "
        "(name:key,name:key). Flags override the environment, which overrides the config file.",
    )
    parser.add_argument("--host", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: 8000; 0: any free port)")
    parser.add_argument(
        "--api-key",
        help=f"key clients must send as 'Authorization: Bearer <key>' (default: ${KEY_VARIABLE}; "
        "an argument is visible to other users in ps, the variable is not)",
    )
    parser.add_argument("--keys-file", metavar="PATH", help="named keys, one 'name key' a line (owner-only file)")
    parser.add_argument(
        "--cors-origin", action="append", metavar="ORIGIN", dest="cors_origins",
        help="a web page origin allowed to call the API (repeatable; '*' only with a key; default: CORS off)",
    )  # fmt: skip
    parser.add_argument("--profile", help="the harvested session profile to use (default: default)")
    parser.add_argument("--config", metavar="PATH", help="the TOML config file (default: $HARVESTKIT_CONFIG or the platform's)")
    parser.add_argument(
        "--stream-flush-ms", type=_flush_ms, metavar="MS",
        help=f"write a streamed response at most once in MS milliseconds, joining what arrives meanwhile "
        f"(default: {STREAM_FLUSH_MS:g}; 0: write each provider read at once)",
    )  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no access log on stderr")
    parser.set_defaults(run=run)


def _flush_ms(text: str) -> float:
    try:
        return check_stream_flush(float(text), "the value")
    except (ValueError, ConfigError) as exc:  # argparse prints one usage line with this message
        raise argparse.ArgumentTypeError(str(exc) if isinstance(exc, ConfigError) else f"not a number: {text!r}") from None


def settings(args: argparse.Namespace) -> Effective:
    """What `serve` runs with; :class:`ConfigError` for a bad config or keys file."""
    return effective(
        load_config(args.config),
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        keys_file=args.keys_file,
        cors_origins=args.cors_origins,
        profile=args.profile,
        stream_flush_ms=args.stream_flush_ms,
    )


def run(args: argparse.Namespace) -> int:
    try:
        from harvestkit.gateway import InsecureBind, check_bind
        from harvestkit.gateway.cors import CorsConfigError, check_origins
        from harvestkit.gateway.server import ACCESS_LOG
    except ImportError as exc:
        print(f"harvestkit serve needs the gateway extra: pip install 'harvestkit[gateway]' ({exc})", file=sys.stderr)
        return FAILURE
    try:
        chosen = settings(args)
        check_bind(chosen.host, chosen.keys)
        check_origins(chosen.cors_origins, bool(chosen.keys))
    except (ConfigError, InsecureBind, CorsConfigError) as exc:
        print(f"harvestkit serve: {exc}", file=sys.stderr)
        return USAGE
    if not args.quiet:
        ACCESS_LOG.setLevel(logging.INFO)
    if args.config:  # the session store it names is this process's default one
        from harvestkit.cache import use_config

        use_config(args.config)
    return asyncio.run(_serve(chosen))


async def _serve(chosen: Effective) -> int:
    from harvestkit.client.session_pool import pools_from_config
    from harvestkit.gateway import serve

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(EXECUTOR_THREADS, thread_name_prefix="harvestkit-serve"))
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    summary = {name: value for name, value in chosen.describe().items() if name in ("config file", "listen", "proxy", "session store")}
    pools = pools_from_config(chosen.pools)
    try:
        async with serve(
            chosen.host,
            chosen.port,
            keys=chosen.keys,
            profile=chosen.profile,
            profiles=chosen.profiles,
            proxy=chosen.proxy,
            cors_origins=chosen.cors_origins,
            aliases=chosen.aliases,
            summary=summary,
            pools=pools,
            stream_flush_ms=chosen.stream_flush_ms,
        ) as url:
            guard = "clients must send the API key" if chosen.keys else "no API key"
            print(f"harvestkit serve: OpenAI-compatible API at {url}/v1 ({guard}); Ctrl-C stops it",
                  file=sys.stderr, flush=True)  # fmt: skip
            await stop.wait()
            for sig in (signal.SIGINT, signal.SIGTERM):  # a second signal stops at once
                loop.remove_signal_handler(sig)
            print("harvestkit serve: stopping (finishing the requests in flight)", file=sys.stderr, flush=True)
    except OSError as exc:
        print(f"harvestkit serve: cannot listen on {chosen.host}:{chosen.port}: {exc}", file=sys.stderr)
        return FAILURE
    return 0
