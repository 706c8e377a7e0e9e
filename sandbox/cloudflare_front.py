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
        reason = self.blocked_because(request)
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
        if request.host.split(":")[0] != self.host:
            return
        now = time.time()
        presented = request.cookies.get("__cf_bm", "")
        issued = _cf_bm_time(presented)
        lifetime = self.state.knobs.cf_bm_lifetime
        if not self.state.knobs.rotate_cookies and issued is not None and now - issued < lifetime / 2:
            return
        value = f"{secrets.token_hex(22)}-{int(now)}-1.0.1.1-{secrets.token_hex(48)}"
        if self.state.knobs.rotate_cookies:
            self.live_cf_bm.discard(presented)
        self.live_cf_bm.add(value)
        set_cookie(
            response, "__cf_bm", value, expires=now + lifetime, domain=self.cookie_domain, same_site="None"
        )


def _cf_bm_time(value: str) -> float | None:
    """The issue time embedded in a `__cf_bm` value."""
    parts = value.split("-")
    return float(parts[1]) if len(parts) == 4 and parts[1].isdigit() else None
