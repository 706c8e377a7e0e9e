"""Run the sandbox's detector challenge against the harvester's own browser (`doctor --browser`).

The browser is launched exactly as a harvest of `profile` would launch it (its fingerprint file,
the environment's overrides, `HARVESTKIT_STEALTH`), on a throwaway profile directory, through an
in-process sandbox; the result is the challenge's verdict: each detector's flags.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .browser import Chromium, LaunchOptions
from .stealth import Fingerprint, profile_fingerprint
from .stealth_display import Xvfb, XvfbUnavailable

PLAYGROUND = "https://playground.ai.cloudflare.com/"
WAIT = 30.0  # seconds for the challenge to give its verdict


@dataclass
class ModeResult:
    """One mode's outcome: the verdict's parts, or why the mode was skipped or failed."""

    mode: str  # "headless" or "headful"
    display: str = ""  # "", "DISPLAY", "Xvfb"
    verdict: dict[str, Any] | None = None  # challenge.Verdict.to_dict()
    skipped: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.skipped is not None or (self.verdict is not None and bool(self.verdict["passed"]))

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "display": self.display, "verdict": self.verdict, "skipped": self.skipped,
                "error": self.error, "ok": self.ok}


@contextlib.contextmanager
def _display() -> Iterator[str]:
    """A display for a visible browser: the session's own, else a private Xvfb."""
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        yield "DISPLAY"
        return
    with Xvfb() as screen:
        previous = os.environ.get("DISPLAY")
        os.environ["DISPLAY"] = screen.display
        try:
            yield "Xvfb"
        finally:
            if previous is None:
                os.environ.pop("DISPLAY", None)
            else:
                os.environ["DISPLAY"] = previous


async def _verdict(sandbox: Any, fingerprint: Fingerprint | None, headless: bool) -> dict[str, Any]:
    from nodriver import cdp

    sandbox.state.verdicts.clear()
    options = LaunchOptions(
        headless=headless, proxy=sandbox.proxy_url, spki_pins=sandbox.certificates.spki_pins, fingerprint=fingerprint
    )
    async with Chromium(options) as chromium:
        await chromium.browser.main_tab.send(cdp.page.navigate(PLAYGROUND))
        deadline = time.monotonic() + WAIT
        while not sandbox.state.verdicts:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the challenge gave no verdict in {WAIT:g} s")
            await asyncio.sleep(0.05)
    verdict = sandbox.state.verdicts[-1]
    result: dict[str, Any] = verdict.to_dict()
    return result


async def check_browser(profile: str = "default", modes: tuple[str, ...] = ("headless", "headful")) -> tuple[Fingerprint | None, list[ModeResult]]:
    """The profile's fingerprint, and the challenge's verdict for each mode."""
    fingerprint = await asyncio.to_thread(profile_fingerprint, profile)
    try:
        from harvestkit.sandbox import Sandbox
    except ImportError as exc:
        reason = f"needs the sandbox extra (pip install 'harvestkit[sandbox]'): {exc}"
        return fingerprint, [ModeResult(mode, skipped=reason) for mode in modes]
    results = []
    logging.getLogger("harvestkit.sandbox").setLevel(logging.ERROR)  # Chromium's own background calls
    async with Sandbox() as sandbox:
        for mode in modes:
            result = ModeResult(mode)
            try:
                if mode == "headless":
                    result.verdict = await _verdict(sandbox, fingerprint, headless=True)
                else:
                    with _display() as result.display:
                        result.verdict = await _verdict(sandbox, fingerprint, headless=False)
            except XvfbUnavailable as exc:
                result.skipped = f"no display and {exc}"
            except Exception as exc:  # noqa: BLE001 - reported in the table, like any check
                result.error = f"{type(exc).__name__}: {exc}"
            results.append(result)
    return fingerprint, results
