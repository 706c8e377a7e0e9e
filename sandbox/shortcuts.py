"""Browserless shortcuts through the sandbox's two gates, for tests and the demo.

A real harvest goes through Chromium; these do the same steps over plain HTTP with a curl_cffi
session that impersonates Chrome (the sandbox only accepts a Chrome-like TLS fingerprint), so tests of
the API surfaces do not each need a browser.
"""
from __future__ import annotations

import asyncio
import re
import secrets
import time
from typing import Any

from curl_cffi.requests import AsyncSession

from .accounts import SANDBOX_EMAIL, SANDBOX_PASSWORD
from .cerebras_web import HOST as CEREBRAS_WEB
from .challenge import VERIFY_PATH, script_url
from .detectors import encrypt_fpscanner
from .cloudflare_front import HOST as PLAYGROUND

CHROME_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/136.0.0.0 Safari/537.36"
)


def sandbox_session(env: dict[str, str], **kwargs: Any) -> AsyncSession:
    """A Chrome-impersonating curl_cffi session that goes through the sandbox's proxy and CA."""
    kwargs.setdefault("impersonate", "chrome")
    return AsyncSession(proxy=env["HARVESTKIT_PROXY"], verify=env["HARVESTKIT_CA_BUNDLE"], **kwargs)


async def sign_in(session: AsyncSession, email: str = SANDBOX_EMAIL, password: str = SANDBOX_PASSWORD) -> dict[str, Any]:
    """Sign in to the Cerebras demo with its form; return the `/api/auth/session` JSON."""
    page = await session.get(f"https://{CEREBRAS_WEB}/api/auth/signin?callbackUrl=%2F")
    match = re.search(r'name="csrfToken" value="([^"]+)"', page.text)
    if match is None:
        raise RuntimeError(f"no sign-in form (HTTP {page.status_code})")
    await session.post(
        f"https://{CEREBRAS_WEB}/api/auth/callback/credentials",
        data={"csrfToken": match.group(1), "email": email, "password": password, "callbackUrl": "/"},
        allow_redirects=False,
    )
    response = await session.get(f"https://{CEREBRAS_WEB}/api/auth/session")
    return response.json()


def browser_headers(user_agent: str) -> dict[str, str]:
    """The headers a Chrome with this user agent sends beside it (client hints, languages)."""
    major = re.search(r"Chrome/(\d+)", user_agent)
    version = major.group(1) if major else "0"
    return {
        "User-Agent": user_agent,
        "Sec-CH-UA": f'"Chromium";v="{version}", "Not:A-Brand";v="24"',
        "Sec-CH-UA-Mobile": "?0",
        "Sec-CH-UA-Platform": '"Linux"',
        "Accept-Language": "en-US,en;q=0.9",
    }


def _forged_fingerprint(key: str, user_agent: str) -> str:
    """A clean fpscanner payload, encrypted as fpscanner does, for a site whose build key is `key`."""
    fingerprint = {
        "fastBotDetectionDetails": {},
        "fsid": "FS1_shortcut",
        "nonce": secrets.token_hex(6),
        "time": int(time.time() * 1000),
        "signals": {"browser": {"userAgent": user_agent}},
    }
    return encrypt_fpscanner(fingerprint, key)


async def solve_challenge(session: AsyncSession, user_agent: str = CHROME_UA, host: str = PLAYGROUND) -> bool:
    """Report to `host`'s challenge what a clean browser's script would; True once `cf_clearance`
    is set. Like a bot that read the site's unobfuscated fpscanner build, it takes the payload key
    from the served script and forges a clean fingerprint: a shortcut for tests, not a browser.

    The clearance is bound to `user_agent`: send the same User-Agent on later requests.
    """
    headers = browser_headers(user_agent)
    page = await session.get(f"https://{host}/", headers=headers)
    match = re.search(r"cH: '([^']+)'", page.text)
    if match is None:
        return page.status_code == 200
    script = await session.get(f"https://{host}{script_url('fpscanner')}", headers=headers)
    key = re.search(r'encryptFingerprint\(e\) \{\s*const n = "([^"]+)"', script.text)
    report = {
        "token": match.group(1),
        "ua": user_agent,
        "webdriver": False,
        "botd": {"bot": False, "flagged": []},
        "fpscanner": _forged_fingerprint(key.group(1), user_agent) if key else None,
    }
    verdict = await session.post(f"https://{host}{VERIFY_PATH}", json=report, headers=headers)
    return verdict.status_code == 200


async def _holds(tab: Any, condition: str) -> bool:
    try:
        return bool(await tab.evaluate(f"!!({condition})"))
    except Exception as exc:  # nodriver's ProtocolException, told apart by its message
        # A click that navigates destroys the page being evaluated in: not yet, ask again.
        if "navigated" in str(exc) or "context" in str(exc).lower():
            return False
        raise


async def wait_for_page(tab: Any, condition: str, timeout: float = 15.0) -> None:
    """Poll a nodriver tab (every 50 ms) until the JavaScript `condition` holds (a navigation
    in progress counts as "not yet")."""
    deadline = time.monotonic() + timeout
    while not await _holds(tab, condition):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the page never satisfied: {condition}")
        await asyncio.sleep(0.05)


async def sign_in_in_browser(tab: Any, email: str = SANDBOX_EMAIL, password: str = SANDBOX_PASSWORD) -> None:
    """What a person does on the sandbox's Cerebras page in a browser: click "Sign in", fill the
    form, submit. `tab` is a nodriver tab showing the signed-out page."""
    await wait_for_page(tab, "document.body && document.body.dataset.state === 'signed-out'")
    await (await tab.select("#signin")).click()
    await wait_for_page(tab, "document.getElementById('email') !== null")
    await (await tab.select("#email")).send_keys(email)
    await (await tab.select("#password")).send_keys(password)
    await (await tab.select("#submit")).click()
