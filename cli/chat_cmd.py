"""`harvestkit chat` and `harvestkit models`: the client library from the shell.

`chat` writes the answer to stdout as it arrives (the prompt comes from the argument or stdin);
`--json` writes one event per line instead: text, reasoning, tool_calls, usage, finish.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from typing import Any

from harvestkit.client import (
    PROVIDERS,
    FinishReason,
    Reasoning,
    ToolCalls,
    Usage,
    aclose,
    get_provider,
)

from .common import OK, USAGE, command, print_json, report_error
from .record_cmd import recorded


def add_parsers(commands: Any) -> None:
    chat = commands.add_parser("chat", help="ask a model; the answer streams to stdout")
    chat.add_argument("prompt", nargs="?", help="the prompt (default: read stdin)")
    chat.add_argument("-p", "--provider", choices=sorted(PROVIDERS), default="cerebras")
    chat.add_argument("-m", "--model", default=None, help="model id or alias (default: the provider's)")
    chat.add_argument("--system", default=None, help="system message")
    chat.add_argument("--max-tokens", type=int, default=None)
    chat.add_argument("--profile", default=None, help="the session's profile (default: the config's pool, else default)")
    chat.add_argument("--json", action="store_true", help="one JSON event per line")
    chat.add_argument("--record", metavar="FILE", default=None, help="also write a scrubbed HAR of the traffic")
    chat.set_defaults(run=run_chat)

    models = commands.add_parser("models", help="the live model list (built-in list when offline)")
    models.add_argument("-p", "--provider", choices=sorted(PROVIDERS), default=None, help="default: both")
    models.add_argument("--profile", default="default")
    models.add_argument("--json", action="store_true", help="print JSON")
    models.set_defaults(run=run_models)


def _event(event: Any) -> dict[str, Any]:
    if isinstance(event, str):
        return {"type": "text", "text": event}
    if isinstance(event, Reasoning):
        return {"type": "reasoning", "text": event.text}
    if isinstance(event, ToolCalls):
        return {"type": "tool_calls", "calls": event.calls}
    if isinstance(event, Usage):
        return {"type": "usage", **dataclasses.asdict(event)}
    if isinstance(event, FinishReason):
        return {"type": "finish", "reason": event.reason}
    return {"type": "unknown", "value": repr(event)}


def _sessions(args: argparse.Namespace) -> dict[str, Any]:
    """`--profile`, else the config file's pool of the provider's site, else the default profile."""
    if args.profile is not None:
        return {"profile": args.profile}
    from harvestkit.common.config import load_config

    specs = {site: spec for site, spec in load_config().pools.items() if site == args.provider}
    if not specs:
        return {"profile": "default"}
    from harvestkit.client.session_pool import pools_from_config

    return {"pools": tuple(pools_from_config(specs))}


async def _chat(args: argparse.Namespace, prompt: str) -> None:
    provider = get_provider(args.provider)
    try:
        async with provider.stream(
            prompt, args.model, system=args.system, max_tokens=args.max_tokens, **_sessions(args)
        ) as stream:
            async for event in stream:
                if args.json:
                    print_json(_event(event))
                elif isinstance(event, str):
                    sys.stdout.write(event)
                    sys.stdout.flush()
            if not args.json:
                sys.stdout.write("\n")
    finally:
        await aclose()


@command
def run_chat(args: argparse.Namespace) -> int:
    prompt = args.prompt if args.prompt is not None else sys.stdin.read()
    if not prompt.strip():
        print("harvestkit chat: give a prompt as an argument or on stdin", file=sys.stderr)
        return USAGE
    try:
        with recorded(args.record):
            asyncio.run(_chat(args, prompt))
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line and an exit code
        return report_error(exc, "harvestkit chat")
    return OK


@command
def run_models(args: argparse.Namespace) -> int:
    names = [args.provider] if args.provider else sorted(PROVIDERS)
    found = {name: get_provider(name).get_models(profile=args.profile) for name in names}
    if args.json:
        print_json(found)
    else:
        for name, models in found.items():
            for model in models:
                print(f"{name}\t{model}")
    return OK
