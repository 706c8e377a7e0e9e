"""`harvestkit demo`: start the sandbox and show both services answering, end to end.

Steps: start the sandbox; show the signed-out session and a refused foreign host; show a plain
client challenged by Cloudflare; then, in a real Chromium, pass the challenge and sign in to the
Cerebras demo as a user would; read the demo key from the session; stream one answer from the
Cerebras API with it. Secrets are shown redacted. Every step prints its time.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from typing import Any

from curl_cffi.requests import AsyncSession

CEREBRAS_WEB = "https://inference.cerebras.ai"
CEREBRAS_API = "https://api.cerebras.ai"
PLAYGROUND = "https://playground.ai.cloudflare.com"


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("demo", help="run the end-to-end demo against the sandbox")
    parser.add_argument("--no-browser", action="store_true", help="skip the steps that need Chromium")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.verbose:
        # Chromium's own background requests are refused by the proxy; that is the point, not news.
        logging.getLogger("harvestkit.sandbox").setLevel(logging.ERROR)
    return asyncio.run(_demo(use_browser=not args.no_browser))


class Steps:
    """Prints each step with the time it took."""

    def __init__(self) -> None:
        self.started = self.last = time.monotonic()

    def done(self, what: str) -> None:
        now = time.monotonic()
        print(f"  [{now - self.last:6.3f} s] {what}", flush=True)
        self.last = now


async def _demo(use_browser: bool) -> int:
    from harvestkit.sandbox import Sandbox
    from harvestkit.sandbox.shortcuts import sandbox_session

    steps = Steps()
    async with Sandbox() as sandbox:
        steps.done(f"sandbox listening: HARVESTKIT_PROXY={sandbox.proxy_url}")
        env = sandbox.env
        async with sandbox_session(env) as http:
            session = await http.get(f"{CEREBRAS_WEB}/api/auth/session")
            steps.done(f"GET {CEREBRAS_WEB}/api/auth/session -> {session.status_code} {session.text}")
            try:
                await http.get("https://example.com/")
                steps.done("example.com answered: THE PROXY LEAKS")
                return 1
            except Exception:  # curl reports the proxy's 403 to CONNECT as a connection error
                steps.done("https://example.com/ -> refused by the proxy (nothing leaves loopback)")
        async with sandbox_session(env, impersonate=None) as plain:
            page = await plain.get(f"{PLAYGROUND}/")
            title = page.text.split("<title>", 1)[-1].split("</title>", 1)[0]
            steps.done(f"plain TLS client at the playground -> {page.status_code} {title!r}")
        if not use_browser:
            return 0
        key = await _browser_steps(sandbox, steps)
        if key is None:
            return 1
        await _stream_answer(env, key, steps)
        print(f"  total {time.monotonic() - steps.started:.3f} s", flush=True)
    return 0


async def _browser_steps(sandbox: Any, steps: Steps) -> str | None:
    from harvestkit.cache import redact
    from harvestkit.harvester.browser import Chromium, LaunchOptions
    from harvestkit.harvester.errors import BrowserError

    options = LaunchOptions(proxy=sandbox.proxy_url, spki_pins=sandbox.certificates.spki_pins)
    try:
        async with Chromium(options) as chromium:
            steps.done(f"Chromium {chromium.version} started (pid {chromium.pid})")
            tab = await chromium.browser.get(f"{PLAYGROUND}/")
            await _wait(tab, "document.body && document.body.dataset.state === 'ready'")
            steps.done("Cloudflare challenge passed in the browser; playground loaded its models")
            tab = await chromium.browser.get(f"{CEREBRAS_WEB}/api/auth/signin?callbackUrl=%2F")
            await _wait(tab, "document.getElementById('email') !== null")
            await (await tab.select("#email")).send_keys(sandbox.email)
            await (await tab.select("#password")).send_keys(sandbox.password)
            await (await tab.select("#submit")).click()
            await _wait(tab, "document.body && document.body.dataset.state === 'signed-in'")
            steps.done(f"signed in to the Cerebras demo as {sandbox.email}")
            body = await tab.evaluate(
                "fetch('/api/auth/session').then(r => r.text())", await_promise=True
            )
    except BrowserError as exc:
        print(f"  browser step failed: {exc}", file=sys.stderr)
        return None
    key = json.loads(body)["user"]["demoApiKey"]
    steps.done(f"demo API key from the session: {redact(key)} (browser stopped)")
    return key


async def _wait(tab: Any, condition: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await tab.evaluate(f"!!({condition})"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"page never satisfied: {condition}")
        await asyncio.sleep(0.05)


async def _stream_answer(env: dict[str, str], key: str, steps: Steps) -> None:
    async with AsyncSession(
        proxy=env["HARVESTKIT_PROXY"], verify=env["HARVESTKIT_CA_BUNDLE"], impersonate="chrome"
    ) as http:
        response = await http.post(
            f"{CEREBRAS_API}/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": "llama3.1-8b", "stream": True, "messages": [{"role": "user", "content": "Hello from harvestkit"}]},
            stream=True,
        )
        print("  answer: ", end="", flush=True)
        async for line in response.aiter_lines():
            if line.startswith(b"data: "):
                chunk = json.loads(line[6:])
                delta = chunk["choices"][0]["delta"].get("content")
                if delta:
                    print(delta, end="", flush=True)
                if chunk.get("usage"):
                    usage = chunk["usage"]
        print(flush=True)
        steps.done(f"streamed from {CEREBRAS_API}: {usage['completion_tokens']} tokens, finish={chunk['choices'][0]['finish_reason']}")
