"""Cloudflare in front of the playground: the bot challenge, `cf_clearance` and `__cf_bm`.

Clearance is earned by running the challenge page's script in a browser that does not look
automated (`navigator.webdriver` false, no "HeadlessChrome" in the user agent), and it is bound to the
user agent that earned it and to the TLS client class the proxy saw ("chrome" is required).
"""
from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from . import keys
from .challenge_knobs import challenge_again
from .cookies import set_cookie
from .state import SandboxState

HOST = "playground.ai.cloudflare.com"
COOKIE_DOMAIN = ".ai.cloudflare.com"
CHALLENGE_PREFIX = "/cdn-cgi/challenge-platform/"
VERIFY_PATH = CHALLENGE_PREFIX + "h/b/flow/ov1"

CHALLENGE_PAGE = """<!DOCTYPE html>
<html lang="en-US"><head><title>Just a moment...</title>
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">
<meta name="robots" content="noindex,nofollow"></head>
<body><div class="main-wrapper" role="main"><div class="main-content">
<h1 class="zone-name-title h1">playground.ai.cloudflare.com</h1>
<div id="cf-please-wait"><p id="cf-spinner-please-wait">Verifying you are human. This may take a few seconds.</p></div>
{widget}
<p id="cf-result"></p>
<noscript><div class="h2">Enable JavaScript and cookies to continue</div></noscript>
</div></div>
<script>
window._cf_chl_opt = {{cvId: "3", cZone: "{host}", cType: "{kind}", cRay: "{ray}", cH: "{token}"}};
(function () {{
  function verify() {{
    var automated = navigator.webdriver === true || /HeadlessChrome/.test(navigator.userAgent);
    fetch("{verify}", {{method: "POST", headers: {{"content-type": "application/json"}},
      body: JSON.stringify({{token: window._cf_chl_opt.cH, ua: navigator.userAgent, webdriver: navigator.webdriver === true}})}})
      .then(function (r) {{
        if (r.ok && !automated) {{ location.reload(); }}
        else {{ document.getElementById("cf-result").textContent = "Sorry, you have been blocked"; document.title = "Attention Required! | Cloudflare"; }}
      }});
  }}
  if (window._cf_chl_opt.cType === "interactive") {{
    document.getElementById("cf-verify").addEventListener("click", verify);
  }} else {{
    setTimeout(verify, {delay_ms});
  }}
}})();
</script></body></html>
"""
INTERACTIVE_WIDGET = (
    '<div id="cf-turnstile"><label><input type="checkbox" id="cf-verify"> '
    "Verify you are human</label></div>"
)


@dataclass
class Clearance:
    user_agent: str
    client_class: str
    issued_at: float
    expires_at: float


class CloudflareFront:
    """The challenge and the cookies Cloudflare adds to every playground response."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.clearances: dict[str, Clearance] = {}
        self.tokens: dict[str, float] = {}  # challenge token -> issued at
        self.live_cf_bm: set[str] = set()
        self.cf_bm_seen: dict[str, float] = {}  # __cf_bm value -> last request that carried it
        self.fresh: set[str] = set()  # clearances not used since they were earned

    def install(self, app: web.Application) -> None:
        app.middlewares.append(self.middleware)
        app.on_response_prepare.append(self.add_cf_bm)
        app.router.add_post(VERIFY_PATH, self.verify)

    # -- the gate -----------------------------------------------------------------------------
    def blocked_because(self, request: web.Request) -> str | None:
        """Why this request must be challenged, or None when its clearance holds."""
        contradiction = h2_contradiction(request)
        if contradiction is not None:
            return contradiction
        cf_bm = request.cookies.get("__cf_bm")
        if self.state.knobs.rotate_cookies and cf_bm and cf_bm not in self.live_cf_bm:
            return "stale __cf_bm after rotation"
        clearance = self.clearances.get(request.cookies.get("cf_clearance", ""))
        if clearance is None:
            return "no clearance"
        if clearance.expires_at <= time.time() or clearance.issued_at < self.state.expired_before:
            return "clearance expired"
        if clearance.user_agent != request.headers.get("User-Agent", ""):
            return "clearance bound to another user agent"
        if clearance.client_class != request.get(keys.CLIENT_CLASS):
            return "clearance bound to another TLS fingerprint"
        return None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith(CHALLENGE_PREFIX):
            return await handler(request)
        reason = self.blocked_because(request) or challenge_again(self.state, request, self.clearances, self.fresh)
        if reason is not None:
            request[keys.NOTE] = reason
            return self.challenge_page()
        return await handler(request)

    def challenge_page(self, status: int = 403) -> web.Response:
        token = secrets.token_urlsafe(24)
        self.tokens[token] = time.time()
        interactive = self.state.knobs.interactive_challenge
        page = CHALLENGE_PAGE.format(
            host=HOST,
            kind="interactive" if interactive else "managed",
            ray=secrets.token_hex(8),
            token=token,
            verify=VERIFY_PATH,
            delay_ms=int(self.state.knobs.challenge_delay * 1000),
            widget=INTERACTIVE_WIDGET if interactive else "",
        )
        headers = {"cf-mitigated": "challenge", "server": "cloudflare", "cache-control": "no-store"}
        return web.Response(status=status, text=page, content_type="text/html", headers=headers)

    async def verify(self, request: web.Request) -> web.Response:
        """The challenge script reports here; a browser that passes gets `cf_clearance`."""
        try:
            report = json.loads(await request.read())
        except ValueError:
            report = None
        user_agent = request.headers.get("User-Agent", "")
        reason = None
        if not isinstance(report, dict) or self.tokens.pop(str(report.get("token")), None) is None:
            reason = "unknown or reused challenge token"
        elif report.get("webdriver") is not False:
            reason = "navigator.webdriver is true"
        elif "HeadlessChrome" in user_agent or "HeadlessChrome" in str(report.get("ua")):
            reason = "HeadlessChrome user agent"
        elif report.get("ua") != user_agent:
            reason = "navigator.userAgent differs from the User-Agent header"
        elif request.get(keys.CLIENT_CLASS) != "chrome":
            reason = "TLS fingerprint is not a browser's"
        elif h2_contradiction(request) is not None:
            reason = h2_contradiction(request)
        if reason is not None:
            request[keys.NOTE] = reason
            return web.json_response({"success": False}, status=403)
        now = time.time()
        value = f"{secrets.token_hex(22)}-{int(now)}-1.2.1.1-{secrets.token_hex(40)}"
        self.clearances[value] = Clearance(
            user_agent, request[keys.CLIENT_CLASS], now, now + self.state.knobs.clearance_lifetime
        )
        self.fresh.add(value)
        response = web.json_response({"success": True})
        set_cookie(
            response,
            "cf_clearance",
            value,
            expires=now + self.state.knobs.clearance_lifetime,
            domain=COOKIE_DOMAIN,
            same_site="None",
            partitioned=True,
        )
        return response

    # -- __cf_bm on every response -------------------------------------------------------------
    async def add_cf_bm(self, request: web.Request, response: web.StreamResponse) -> None:
        """`__cf_bm` on every response, with a sliding expiry (spec 4.2): a value still alive
        (seen within `cf_bm_lifetime`) is sent again with its expiry moved to now + lifetime (a
        new value once it is half a lifetime old); a dead or missing one (or any, with
        `rotate_cookies`) is replaced by a new value."""
        if request.host.split(":")[0] != HOST:
            return
        now = time.time()
        presented = request.cookies.get("__cf_bm", "")
        lifetime = self.state.knobs.cf_bm_lifetime
        issued = _cf_bm_time(presented)
        young = issued is not None and now - issued < lifetime / 2  # older ones get a new value
        if not self.state.knobs.rotate_cookies and young and self.cf_bm_alive(presented, now):
            value = presented
        else:
            value = f"{secrets.token_hex(22)}-{int(now)}-1.0.1.1-{secrets.token_hex(48)}"
            if self.state.knobs.rotate_cookies:
                self.live_cf_bm.discard(presented)
            self.live_cf_bm.add(value)
        self.cf_bm_seen[value] = now
        set_cookie(
            response, "__cf_bm", value, expires=now + lifetime, domain=COOKIE_DOMAIN, same_site="None"
        )

    def cf_bm_alive(self, value: str, now: float) -> bool:
        """Whether a `__cf_bm` value was issued here, is not expired, and was used recently enough."""
        seen = self.cf_bm_seen.get(value)
        issued = _cf_bm_time(value)
        return (
            seen is not None
            and now - seen < self.state.knobs.cf_bm_lifetime
            and issued is not None
            and issued >= int(self.state.expired_before)
        )


def h2_contradiction(request: web.Request) -> str | None:
    """Why this request's HTTP/2 fingerprint contradicts its Chrome user agent, or None.

    Only an HTTP/2 request can contradict (HTTP/1.1 has no such fingerprint), and only a user
    agent that claims Chrome (Chromium, Edge and curl_cffi's Chrome targets all send Chrome's).
    """
    if request.get(keys.H2_CLASS) != "other" or "Chrome/" not in request.headers.get("User-Agent", ""):
        return None
    return f"HTTP/2 fingerprint contradicts a Chrome user agent: {request.get(keys.H2_MISMATCH)}"


def _cf_bm_time(value: str) -> float | None:
    """The issue time embedded in a `__cf_bm` value."""
    parts = value.split("-")
    return float(parts[1]) if len(parts) == 4 and parts[1].isdigit() else None
