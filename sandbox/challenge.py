"""Cloudflare's managed challenge as the sandbox serves it: the page, its script, and the verdict.

The page has today's form (spec 4.2): `window._cf_chl_opt` with single-quoted values, a `meta
refresh` of 360, `#challenge-error-text` and the orchestrate script under
`/cdn-cgi/challenge-platform/h/b/orchestrate/chl_page/v1`, no `cf-please-wait`. The orchestrate
script runs the real detectors, `@fingerprintjs/botd` and `fpscanner` (see `detectors`), and
posts what they report. `judge()` decides: the challenge passes only when both report a clean
browser and the server-side checks of the request hold.
"""
from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .detectors import BOTD, FPSCANNER, decrypt_fpscanner

PLATFORM = "/cdn-cgi/challenge-platform/"
VERIFY_PATH = PLATFORM + "h/b/flow/ov1"
ORCHESTRATE_PATH = PLATFORM + "h/b/orchestrate/chl_page/v1"
SCRIPTS_PATH = PLATFORM + "h/b/scripts/"
REPORT_MAX_AGE = 60.0  # seconds an fpscanner payload stays acceptable (its anti-replay `time`)
BLOCKED_TEXT = "Sorry, you have been blocked"


def script_url(name: str) -> str:
    detector = {BOTD.name: BOTD, FPSCANNER.name: FPSCANNER}[name]
    return SCRIPTS_PATH + detector.filename


# -- the page ---------------------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html lang="en-US"><head><title>Just a moment...</title>
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">
<meta http-equiv="X-UA-Compatible" content="IE=Edge">
<meta name="robots" content="noindex,nofollow">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="refresh" content="360"></head>
<body><div class="main-wrapper" role="main"><div class="main-content">
<h1 class="zone-name-title h1">{zone}</h1>
<p id="challenge-title" class="h2">Verifying you are human. This may take a few seconds.</p>
{widget}
<div id="challenge-error-text" role="alert"></div>
<noscript><div class="h2">Enable JavaScript and cookies to continue</div></noscript>
</div></div>
<script>(function(){{window._cf_chl_opt = {{cvId: '3', cZone: '{zone}', cType: '{kind}', cRay: '{ray}', cH: '{token}', cUPMDTk: "/?__cf_chl_tk={tk}", cFPWv: 'b', cITimeS: '{now}', cTTimeMs: '{delay_ms}', cMTimeMs: '120000', cTplV: 5, cTplB: 'cf', cOgUHash: '', cRq: {{ru: '', ra: '', d: ''}}}};
var cpo = document.createElement('script');
cpo.src = '{orchestrate}?ray={ray}';
window._cf_chl_opt.cOgUQuery = location.search === '?' ? '' : location.search;
document.getElementsByTagName('head')[0].appendChild(cpo);
}}());</script></body></html>
"""
INTERACTIVE_WIDGET = (
    '<div id="cf-turnstile"><label><input type="checkbox" id="cf-verify"> '
    "Verify you are human</label></div>"
)


def render_page(*, zone: str, token: str, ray: str, interactive: bool, delay: float) -> str:
    """The challenge page for one visit."""
    return PAGE.format(
        zone=html.escape(zone),
        kind="interactive" if interactive else "managed",
        ray=ray,
        token=token,
        tk=token[:16],
        now=int(time.time()),
        delay_ms=int(delay * 1000),
        orchestrate=ORCHESTRATE_PATH,
        widget=INTERACTIVE_WIDGET if interactive else "",
    )


# -- the orchestrate script -------------------------------------------------------------------

ORCHESTRATE = """(function () {
  var opt = window._cf_chl_opt, started = Date.now(), ms = {};
  function timed(name, promise) {
    var t0 = performance.now();
    return promise.then(function (value) { ms[name] = Math.round(performance.now() - t0); return value; });
  }
  function collect() {
    if (!%(detectors)s) { return Promise.resolve([null, null]); }
    var botd = timed('botd', import('%(botd)s').then(function (m) { return m.load({monitoring: false}); })
      .then(function (agent) {
        var result = agent.detect(), detections = agent.getDetections(), flagged = [];
        for (var name in detections) { if (detections[name].bot) { flagged.push(name); } }
        return {bot: result.bot, botKind: result.botKind || null, flagged: flagged};
      }, function (e) { return {error: String(e)}; }));
    var fp = timed('fpscanner', import('%(fpscanner)s').then(function (m) { return new m.default().collectFingerprint(); })
      .then(function (payload) { return payload; }, function (e) { return null; }));
    return Promise.all([botd, fp]);
  }
  function fail(text) {
    document.title = 'Attention Required! | Cloudflare';
    document.getElementById('challenge-title').textContent = '%(blocked)s';
    document.getElementById('challenge-error-text').textContent = text;
  }
  function verify() {
    collect().then(function (results) {
      var wait = Math.max(0, parseInt(opt.cTTimeMs, 10) - (Date.now() - started));
      setTimeout(function () {
        fetch('%(verify)s', {method: 'POST', headers: {'content-type': 'application/json'},
          body: JSON.stringify({token: opt.cH, ua: navigator.userAgent, webdriver: navigator.webdriver === true,
                                botd: results[0], fpscanner: results[1], ms: ms})})
          .then(function (r) { return r.json().then(function (body) { return [r.ok, body]; }); })
          .then(function (answer) {
            if (answer[0]) { location.reload(); } else { fail(answer[1].verdict || 'refused'); }
          }, function () { fail('the verification request failed'); });
      }, wait);
    });
  }
  if (opt.cType === 'interactive') {
    document.getElementById('cf-verify').addEventListener('click', verify);
  } else {
    verify();
  }
})();
"""


def orchestrate_script(run_detectors: bool = True) -> str:
    return ORCHESTRATE % {
        "detectors": "true" if run_detectors else "false",
        "botd": script_url(BOTD.name),
        "fpscanner": script_url(FPSCANNER.name),
        "verify": VERIFY_PATH,
        "blocked": BLOCKED_TEXT,
    }


# -- the verdict ------------------------------------------------------------------------------


@dataclass
class Verdict:
    """What the challenge concluded about one browser."""

    botd: list[str] = field(default_factory=list)  # BotD detectors that said "bot"
    fpscanner: list[str] = field(default_factory=list)  # fpscanner's detected rules
    server: list[str] = field(default_factory=list)  # the server's own checks that failed
    fsid: str | None = None  # fpscanner's fingerprint id: the device, as the site sees it
    signals: dict[str, Any] = field(default_factory=dict)  # fpscanner's signals, for inspection
    refusal: str | None = None  # a reason that stopped the checks (bad token, no report)
    detectors: bool = True  # whether the detectors ran (the `challenge_detectors` knob)
    timings: dict[str, float] = field(default_factory=dict)  # ms each detector took in the page
    time: float = field(default_factory=time.time)

    @property
    def passed(self) -> bool:
        return self.refusal is None and not (self.botd or self.fpscanner or self.server)

    def summary(self) -> str:
        """"passed: ..." or "refused: fpscanner flagged hasSwiftshaderRenderer, hasUTCTimezone"."""
        if self.refusal is not None:
            return f"refused: {self.refusal}"
        if self.passed:
            if not self.detectors:
                return "passed: server checks clean (detectors off)"
            return "passed: botd clean, fpscanner clean, server checks clean"
        parts = [
            f"{name} flagged {', '.join(flags)}"
            for name, flags in (("fpscanner", self.fpscanner), ("botd", self.botd), ("server", self.server))
            if flags
        ]
        return "refused: " + "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "summary": self.summary(),
            "botd": self.botd,
            "fpscanner": self.fpscanner,
            "server": self.server,
            "fsid": self.fsid,
            "timings": self.timings,
            "time": self.time,
        }


_MAJOR = re.compile(r"Chrome/(\d+)\.")
_BRAND = re.compile(r'"([^"]*)";v="(\d+)"')


def _ua_platform(user_agent: str) -> str | None:
    for marker, platform in (("Windows", "Windows"), ("Macintosh", "macOS"), ("Android", "Android"),
                             ("CrOS", "Chrome OS"), ("Linux", "Linux")):
        if marker in user_agent:
            return platform
    return None


def server_flags(headers: Mapping[str, str], report: Mapping[str, Any], client_class: str | None) -> list[str]:
    """The server's checks of the verify request and the page's report (names of those failing)."""
    flags = []
    user_agent = headers.get("User-Agent", "")
    if report.get("webdriver") is not False:
        flags.append("webdriver")
    if "HeadlessChrome" in user_agent or "HeadlessChrome" in str(report.get("ua")):
        flags.append("headlessUserAgent")
    if report.get("ua") != user_agent:
        flags.append("userAgentMismatch")
    if client_class != "chrome":
        flags.append("tlsNotBrowser")
    major = _MAJOR.search(user_agent)
    brands = {name: version for name, version in _BRAND.findall(headers.get("Sec-CH-UA", ""))}
    chromium = brands.get("Chromium") or brands.get("Google Chrome")
    if major is not None and chromium != major.group(1):
        flags.append("secChUaMismatch")  # no hints at all from a "Chrome" counts too
    platform = headers.get("Sec-CH-UA-Platform", "").strip('"')
    if major is not None and platform != _ua_platform(user_agent):
        flags.append("platformHintMismatch")
    if not headers.get("Accept-Language", "").strip():
        flags.append("noAcceptLanguage")
    return flags


class NonceBook:
    """fpscanner nonces already used, kept for the payloads' acceptable age."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    def first_use(self, nonce: str, now: float) -> bool:
        self._seen = {n: t for n, t in self._seen.items() if now - t < 2 * REPORT_MAX_AGE}
        if nonce in self._seen:
            return False
        self._seen[nonce] = now
        return True


def judge(
    report: Any,
    headers: Mapping[str, str],
    client_class: str | None,
    fpscanner_key: str,
    nonces: NonceBook,
    now: float | None = None,
    *,
    detectors: bool = True,
) -> Verdict:
    """The verdict on one verify request (its token already checked by the caller); without
    `detectors`, the server's checks alone."""
    now = time.time() if now is None else now
    if not isinstance(report, dict):
        return Verdict(refusal="the report is not a JSON object")
    verdict = Verdict(server=server_flags(headers, report, client_class), time=now)
    if not detectors:
        verdict.detectors = False
        return verdict
    timings = report.get("ms")
    if isinstance(timings, dict):
        verdict.timings = {str(k): float(v) for k, v in timings.items() if isinstance(v, (int, float))}
    botd = report.get("botd")
    if not isinstance(botd, dict) or "bot" not in botd:
        verdict.botd = ["noReport"]
    elif botd.get("bot") is not False:
        verdict.botd = [str(name) for name in botd.get("flagged") or []] or [str(botd.get("botKind") or "bot")]
    try:
        fingerprint = decrypt_fpscanner(str(report.get("fpscanner") or ""), fpscanner_key)
    except ValueError:  # binascii.Error and JSON errors are ValueErrors
        verdict.fpscanner = ["noReport"]
        return verdict
    details = fingerprint.get("fastBotDetectionDetails")
    if not isinstance(details, dict):
        verdict.fpscanner = ["noReport"]
        return verdict
    verdict.fpscanner = [name for name, rule in details.items() if isinstance(rule, dict) and rule.get("detected")]
    verdict.fsid = str(fingerprint.get("fsid")) if fingerprint.get("fsid") else None
    signals = fingerprint.get("signals")
    verdict.signals = signals if isinstance(signals, dict) else {}
    sent = fingerprint.get("time")
    if not isinstance(sent, (int, float)) or abs(now - sent / 1000) > REPORT_MAX_AGE:
        verdict.server.append("staleFingerprint")
    if not nonces.first_use(str(fingerprint.get("nonce")), now):
        verdict.server.append("replayedFingerprint")
    browser = verdict.signals.get("browser")
    if not isinstance(browser, dict) or browser.get("userAgent") != headers.get("User-Agent"):
        verdict.server.append("fingerprintUserAgentMismatch")
    return verdict


def verdict_body(verdict: Verdict) -> str:
    return json.dumps({"success": verdict.passed, "verdict": verdict.summary()})
