"""Cloudflare in front of a site: the bot challenge, `cf_clearance` and `__cf_bm`.

Clearance is earned by running the challenge page's script, which runs the real bot detectors
(`challenge`, `detectors`), in a browser they find clean and whose request passes the server's
checks. It is bound to the user agent that earned it and to the TLS client class the proxy saw
("chrome" is required). The playground is gated on every request; the Cerebras front
(`cerebras_web`) on page views only.
"""
from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from . import detectors, keys
from .challenge import (
    ORCHESTRATE_PATH,
    PLATFORM,
    SCRIPTS_PATH,
    VERIFY_PATH,
    NonceBook,
    Verdict,
    judge,
    orchestrate_script,
    render_page,
    script_url,
    verdict_body,
)
from .challenge_knobs import challenge_again
from .cookies import set_cookie
from .state import SandboxState

log = logging.getLogger("harvestkit.sandbox")

HOST = "playground.ai.cloudflare.com"
COOKIE_DOMAIN = ".ai.cloudflare.com"
CHALLENGE_PREFIX = PLATFORM

@dataclass
class Clearance:
    user_agent: str
    client_class: str
    issued_at: float
    expires_at: float


Gate = Callable[[web.Request], bool]


def every_request(request: web.Request) -> bool:
    return True


class CloudflareFront:
    """The challenge in front of one host, and the cookies Cloudflare adds to its responses."""

    def __init__(
        self,
        state: SandboxState,
        *,
        host: str = HOST,
        cookie_domain: str = COOKIE_DOMAIN,
        gate: Gate = every_request,
    ) -> None:
        self.state, self.host, self.cookie_domain, self.gate = state, host, cookie_domain, gate
        self.clearances: dict[str, Clearance] = {}
        self.tokens: dict[str, float] = {}  # challenge token -> issued at
        self.live_cf_bm: set[str] = set()
        self.cf_bm_seen: dict[str, float] = {}  # __cf_bm value -> last request that carried it
        self.fresh: set[str] = set()  # clearances not used since they were earned
        self.nonces = NonceBook()
        self.assets: detectors.DetectorAssets | None = None
        self.assets_error: str | None = None
        try:  # the site's own fpscanner build key, as `fpscanner build --key` would inject it
            self.assets = detectors.load(secrets.token_urlsafe(24))
        except (detectors.DetectorsUnavailable, OSError) as exc:
            self.assets_error = f"the sandbox has no bot detectors: {exc}"
            log.warning("%s: %s", host, self.assets_error)

    def install(self, app: web.Application, *, cf_bm: bool = True) -> None:
        app.middlewares.append(self.middleware)
        if cf_bm:
            app.on_response_prepare.append(self.add_cf_bm)
        app.router.add_post(VERIFY_PATH, self.verify)
        app.router.add_get(ORCHESTRATE_PATH, self.orchestrate)
        app.router.add_get(SCRIPTS_PATH + "{name}", self.detector_script)

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
        if request.path.startswith(CHALLENGE_PREFIX) or not self.gate(request):
            return await handler(request)
        reason = self.blocked_because(request) or challenge_again(self.state, request, self.clearances, self.fresh)
        if reason is not None:
            request[keys.NOTE] = reason
            return self.challenge_page()
        return await handler(request)

    # -- the challenge page and its scripts -----------------------------------------------------
    def challenge_page(self, status: int = 403) -> web.Response:
        token = secrets.token_urlsafe(24)
        self.tokens[token] = time.time()
        page = render_page(
            zone=self.host,
            token=token,
            ray=secrets.token_hex(8),
            interactive=self.state.knobs.interactive_challenge,
            delay=self.state.knobs.challenge_delay,
        )
        headers = {"cf-mitigated": "challenge", "server": "cloudflare", "cache-control": "no-store"}
        return web.Response(status=status, text=page, content_type="text/html", headers=headers)

    async def orchestrate(self, request: web.Request) -> web.Response:
        script = orchestrate_script(self.state.knobs.challenge_detectors)
        return web.Response(text=script, content_type="application/javascript")

    async def detector_script(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        known = {script_url(d.name).rsplit("/", 1)[1]: d.name for d in detectors.DETECTORS}
        if self.assets is None or name not in known:
            request[keys.NOTE] = self.assets_error or "no such detector"
            return web.Response(status=404, text="Not Found")
        return web.Response(body=self.assets.modules[known[name]], content_type="application/javascript")

    # -- the verdict ----------------------------------------------------------------------------
    async def verify(self, request: web.Request) -> web.Response:
        """The challenge script reports here; a browser that passes gets `cf_clearance`."""
        try:
            report = json.loads(await request.read())
        except ValueError:
            report = None
        if not isinstance(report, dict) or self.tokens.pop(str(report.get("token")), None) is None:
            verdict = Verdict(refusal="unknown or reused challenge token")
        elif (contradiction := h2_contradiction(request)) is not None:
            verdict = Verdict(refusal=contradiction)
        elif self.assets is None and self.state.knobs.challenge_detectors:
            verdict = Verdict(refusal=str(self.assets_error))
        else:
            verdict = judge(
                report,
                request.headers,
                request.get(keys.CLIENT_CLASS),
                self.assets.fpscanner_key if self.assets else "",
                self.nonces,
                detectors=self.state.knobs.challenge_detectors,
            )
        self.state.verdicts.append(verdict)
        request[keys.NOTE] = verdict.summary()
        log.info("%s challenge %s", self.host, verdict.summary())
        if not verdict.passed:
            return web.Response(status=403, text=verdict_body(verdict), content_type="application/json")
        return self.clear(request)

    def clear(self, request: web.Request) -> web.Response:
        """The answer to a browser that passed: a `cf_clearance` bound to its UA and TLS class."""
        user_agent = request.headers.get("User-Agent", "")
        now = time.time()
        value = f"{secrets.token_hex(22)}-{int(now)}-1.2.1.1-{secrets.token_hex(40)}"
        self.clearances[value] = Clearance(
            user_agent, request[keys.CLIENT_CLASS], now, now + self.state.knobs.clearance_lifetime
        )
        self.fresh.add(value)
        response = web.Response(text=json.dumps({"success": True}), content_type="application/json")
        set_cookie(
            response,
            "cf_clearance",
            value,
            expires=now + self.state.knobs.clearance_lifetime,
            domain=self.cookie_domain,
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
        if request.host.split(":")[0] != self.host:
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
            response, "__cf_bm", value, expires=now + lifetime, domain=self.cookie_domain, same_site="None"
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
