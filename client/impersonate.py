"""Matching curl_cffi's TLS impersonation to the browser a session was harvested with.

A server that bound a session to a browser checks that the user agent and the TLS fingerprint
agree. The target is curl_cffi's newest Chrome not newer than the harvested Chrome, and the
request keeps the harvested user agent and client hints; without a harvested browser the
client presents curl_cffi's newest Chrome with that version's own user agent and hints.
"""

from __future__ import annotations

import functools
import re
import sys
from dataclasses import dataclass, field

from curl_cffi.requests import BrowserType

__all__ = [
    "BrowserIdentity",
    "chrome_major",
    "chrome_targets",
    "default_identity",
    "harvested_identity",
    "target_for",
]

_CHROME = re.compile(r"^chrome(\d+)a?$")
_UA_CHROME = re.compile(r"(?:Chrome|Chromium)/(\d+)\.")


@functools.cache
def chrome_targets() -> tuple[tuple[int, str], ...]:
    """curl_cffi's desktop Chrome targets as (major, name), oldest first (read once: every
    request picks its target from them)."""
    found: dict[int, str] = {}
    for browser in BrowserType:
        match = _CHROME.match(browser.value)
        if match:
            found.setdefault(int(match.group(1)), browser.value)
    return tuple(sorted(found.items()))


def chrome_major(user_agent: str | None) -> int | None:
    """The Chrome major version a user agent claims, if any."""
    match = _UA_CHROME.search(user_agent or "")
    return int(match.group(1)) if match else None


def target_for(major: int | None) -> str:
    """The newest Chrome target not above ``major`` (the oldest one if all are above it)."""
    targets = chrome_targets()
    if major is None:
        return targets[-1][1]
    eligible = [name for version, name in targets if version <= major]
    return eligible[-1] if eligible else targets[0][1]


def _platform() -> tuple[str, str]:
    if sys.platform == "darwin":
        return "Macintosh; Intel Mac OS X 10_15_7", '"macOS"'
    if sys.platform.startswith("win"):
        return "Windows NT 10.0; Win64; x64", '"Windows"'
    return "X11; Linux x86_64", '"Linux"'


@dataclass(frozen=True)
class BrowserIdentity:
    """What a request presents as its browser: TLS target, user agent and client hints."""

    impersonate: str
    user_agent: str | None = None
    client_hints: dict[str, str] = field(default_factory=dict)

    def headers(self) -> dict[str, str]:
        """The identity's request headers (empty for curl_cffi's own defaults)."""
        headers = dict(self.client_hints)
        if self.user_agent:
            headers["User-Agent"] = self.user_agent
        return headers


def harvested_identity(user_agent: str | None, client_hints: dict[str, str] | None) -> BrowserIdentity:
    """The identity of a harvested browser: its user agent and hints, the matching target."""
    if not user_agent:
        return default_identity()
    return BrowserIdentity(target_for(chrome_major(user_agent)), user_agent, dict(client_hints or {}))


def default_identity() -> BrowserIdentity:
    """A desktop Chrome of curl_cffi's newest target, consistent with its TLS fingerprint."""
    major, target = chrome_targets()[-1]
    system, platform = _platform()
    user_agent = (
        f"Mozilla/5.0 ({system}) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{major}.0.0.0 Safari/537.36"
    )
    hints = {
        "sec-ch-ua": f'"Chromium";v="{major}", "Google Chrome";v="{major}", "Not_A Brand";v="99"',
        "sec-ch-ua-mobile": "?0",
        "sec-ch-ua-platform": platform,
    }
    return BrowserIdentity(target, user_agent, hints)
