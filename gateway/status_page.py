"""``GET /``: a status page for people: sessions, request counts, recent errors, configuration.

Plain HTML (no script), refreshing itself every few seconds; every value is escaped and none is
a secret (key names only, proxy passwords masked). Behind the gateway key when there is one
(a browser asks for it: any user name, the key as password).
"""

from __future__ import annotations

import html
import time
from collections import defaultdict
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from aiohttp import web

from .sessions import SessionState, session_states
from .state import GATEWAY, Gateway

__all__ = ["REFRESH_SECONDS", "status_page"]

REFRESH_SECONDS = 5

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;background:#fafafa}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.6em 0 .4em}
table{border-collapse:collapse;background:#fff;min-width:40em}
th,td{border:1px solid #ddd;padding:.3em .7em;text-align:left;vertical-align:top}
th{background:#f0f0f0}.ok{color:#137333;font-weight:600}.bad{color:#b3261e;font-weight:600}
.muted{color:#666}code{font-size:.95em}
"""


def _e(value: object) -> str:
    return html.escape("-" if value is None else str(value))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{sign}{seconds / size:.0f}{unit}"
    return f"{sign}{seconds:.0f}s"


def _table(header: list[str], rows: list[list[str]], empty: str, id: str) -> str:
    if not rows:
        return f'<p class="muted" id="{id}">{_e(empty)}</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table id="{id}"><tr>{head}</tr>{body}</table>'


def _flag(good: bool, yes: str = "yes", no: str = "no") -> str:
    return f'<span class="ok">{yes}</span>' if good else f'<span class="bad">{no}</span>'


def _sessions(states: list[SessionState]) -> str:
    rows = [[_e(s.provider), _e(s.profile), _flag(s.ready), _e(_duration(s.age)), _e(_duration(s.expires_in)),
             _flag(s.fresh), _e(s.cookies), _e(s.detail)] for s in states]  # fmt: skip
    return _table(["provider", "profile", "ready", "age", "expires in", "fresh", "cookies", "detail"], rows,
                  "no providers", "sessions")  # fmt: skip


def request_counts(gateway: Gateway) -> dict[str, dict[str, int]]:
    """Requests per provider: total, succeeded (2xx), failed."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"total": 0, "ok": 0, "failed": 0})
    for metric in gateway.metrics.requests.collect():
        for sample in metric.samples:
            if not sample.name.endswith("_total"):
                continue
            row = counts[sample.labels["provider"]]
            row["total"] += int(sample.value)
            row["ok" if sample.labels["status"].startswith("2") else "failed"] += int(sample.value)
    return dict(counts)


def _requests(gateway: Gateway) -> str:
    rows = [[_e(p if p != "none" else "(no provider)"), _e(c["total"]), _e(c["ok"]), _e(c["failed"])]
            for p, c in sorted(request_counts(gateway).items())]
    return _table(["provider", "requests", "succeeded", "failed"], rows, "no requests yet", "requests")


def _errors(gateway: Gateway) -> str:
    rows = [[_e(time.strftime("%H:%M:%S", time.localtime(e.at))), f"<code>{_e(e.request_id)}</code>", _e(e.provider),
             _e(e.status), _e(e.message)] for e in reversed(gateway.recent_errors)]  # fmt: skip
    return _table(["time", "request id", "provider", "status", "error"], rows, "no errors", "errors")


def _config(gateway: Gateway) -> str:
    summary: dict[str, Any] = {**gateway.summary, "stored responses": len(gateway.store)}
    rows = [[_e(name), f"<code>{_e(value)}</code>"] for name, value in summary.items()]
    return _table(["setting", "value"], rows, "", "config")


def _version() -> str:
    try:
        return version("harvestkit")
    except PackageNotFoundError:  # pragma: no cover - run from a checkout without install
        return "unknown"


async def status_page(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    providers = gateway.catalog.providers
    states = await session_states(providers, {name: gateway.options_for(name) for name in providers})
    ready = any(s.ready for s in states)
    uptime = _duration(time.time() - gateway.started)
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<title>harvestkit gateway</title><style>{STYLE}</style></head><body>
<h1>harvestkit gateway</h1>
<p class="muted">version {_e(_version())} &middot; up {_e(uptime)} &middot; refreshes every {REFRESH_SECONDS} s &middot;
<span id="ready">{_flag(ready, "ready", "not ready: no provider has a usable session")}</span></p>
<h2>Sessions</h2>{_sessions(states)}
<h2>Requests</h2>{_requests(gateway)}
<h2>Recent errors</h2>{_errors(gateway)}
<h2>Configuration</h2>{_config(gateway)}
</body></html>"""
    return web.Response(text=body, content_type="text/html", headers={"Cache-Control": "no-store"})
