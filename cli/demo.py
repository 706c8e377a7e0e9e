"""`harvestkit demo`: the whole product, end to end, against the sandbox.

Starts the sandbox; signs in to its Cerebras demo in a real Chromium as a user would (the login
flow, with the sandbox's demo credentials typed into the form); harvests both sites in one
browser with live progress; streams one answer from each provider through the client; prints
the timings; stops everything. It uses a temporary HARVESTKIT_HOME: your own sessions and
browser profiles are never touched. Secrets are shown redacted.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sys
import tempfile
import time
from typing import Any

from .common import OK, report_error


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("demo", help="run the end-to-end demo against the sandbox")
    parser.set_defaults(run=run)


class Steps:
    """Prints each step with the time since the previous one."""

    def __init__(self) -> None:
        self.started = self.last = time.monotonic()
        self.timings: list[tuple[str, float]] = []

    def done(self, what: str, label: str | None = None) -> None:
        now = time.monotonic()
        print(f"  [{now - self.last:6.3f} s] {what}", flush=True)
        if label:
            self.timings.append((label, now - self.last))
        self.last = now


def run(args: argparse.Namespace) -> int:
    if not args.verbose:
        # Chromium's own background requests are refused by the proxy; that is the point, not news.
        logging.getLogger("harvestkit.sandbox").setLevel(logging.ERROR)
    home = tempfile.mkdtemp(prefix="harvestkit-demo-")
    saved = {name: os.environ.get(name) for name in ("HARVESTKIT_HOME", "HARVESTKIT_PROXY", "HARVESTKIT_CA_BUNDLE")}
    os.environ["HARVESTKIT_HOME"] = home
    try:
        return asyncio.run(_demo())
    except Exception as exc:  # noqa: BLE001 - one line and an exit code, like every command
        return report_error(exc, "harvestkit demo")
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(home, ignore_errors=True)


async def _demo() -> int:
    from harvestkit.sandbox import Sandbox

    steps = Steps()
    print("harvestkit demo: everything below talks to the local sandbox; nothing leaves this machine.")
    async with Sandbox() as sandbox:
        os.environ.update(sandbox.env)
        steps.done(f"sandbox up: HARVESTKIT_PROXY={sandbox.proxy_url}", "sandbox")
        await _login(sandbox, steps)
        await _harvest_both(steps)
        for provider in ("cerebras", "cloudflare"):
            await _answer(provider, steps)
        from harvestkit.client import aclose

        await aclose()
    steps.done("sandbox stopped")
    print("\ntimings:")
    for label, seconds in steps.timings:
        print(f"  {label:<28} {seconds:6.3f} s")
    print(f"  {'total':<28} {time.monotonic() - steps.started:6.3f} s")
    return OK


async def _login(sandbox: Any, steps: Steps) -> None:
    """The first run: a person signs in once. Here the demo types the sandbox's credentials."""
    from harvestkit.harvester import login
    from harvestkit.sandbox.shortcuts import sign_in_in_browser

    await login("cerebras", headless=True, on_page=sign_in_in_browser, timeout=60)
    steps.done(f"signed in to the Cerebras demo in Chromium as {sandbox.email} (harvestkit login cerebras)", "login (first run)")


async def _harvest_both(steps: Steps) -> None:
    from harvestkit.cache import redact
    from harvestkit.harvester import harvest_many

    def show(event: Any) -> None:
        detail = f"  {event.detail}" if event.detail else ""
        print(f"           {event.elapsed:6.3f} s  {event.site:<10} {event.step}{detail}", flush=True)

    print("  harvesting both sites in one headless browser (harvestkit harvest):", flush=True)
    results = await harvest_many(["cerebras", "cloudflare"], progress=show, timeout=60)
    failed = {site: r for site, r in results.items() if isinstance(r, Exception)}
    if failed:
        raise next(iter(failed.values()))
    cerebras, cloudflare = results["cerebras"], results["cloudflare"]
    cookies = ", ".join(sorted({c.name for c in cloudflare.cookies}))
    steps.done(
        f"saved: cerebras demo key {redact(cerebras.api_key or '')}; cloudflare cookies {cookies}; "
        f"user agent Chrome/{(cerebras.user_agent or '').split('Chrome/')[-1].split(' ')[0]}",
        "harvest both sites",
    )


async def _answer(provider: str, steps: Steps) -> None:
    from harvestkit.client import get_provider

    print(f"  {provider} answers: ", end="", flush=True)
    first = None
    started = time.monotonic()
    async with get_provider(provider).stream(f"Hello from harvestkit to {provider}", allow_harvest=False) as stream:
        async for event in stream:
            if isinstance(event, str):
                first = first or time.monotonic() - started
                sys.stdout.write(event)
                sys.stdout.flush()
    usage = stream.usage
    tokens = f"{usage.completion_tokens} tokens" if usage else "no usage"
    print(flush=True)
    steps.done(f"{provider}: {tokens}, finish {stream.finish_reason}, first chunk after {first or 0:.3f} s", f"{provider} answer")

