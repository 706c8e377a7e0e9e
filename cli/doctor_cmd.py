"""`harvestkit doctor`: is this machine ready to harvest and chat?

Checks the browser (found, its version), the curl_cffi impersonation target for it, the auth
cache (location and permissions), the proxy and CA when set, and the clock (against the Date
header of the Cerebras web host, through the configured proxy only: never directly).
`--browser` also runs the sandbox's bot-detector challenge (BotD, fpscanner, the server's own
checks) against the harvester's browser, headless and headful, and prints each one's verdict.
"""

from __future__ import annotations

import argparse
import email.utils
import os
import ssl
import sys
import time
from typing import Any

from .common import FAILURE, OK, Style, print_json


def add_parsers(commands: Any) -> None:
    doctor = commands.add_parser("doctor", help="check the browser, TLS impersonation, cache, proxy and clock")
    doctor.add_argument("--json", action="store_true", help="print JSON")
    doctor.add_argument(
        "--browser", action="store_true", help="run the bot detectors against the harvester's browser, headless and headful"
    )
    doctor.add_argument("--profile", default="default", help="whose fingerprint the browser shows (with --browser)")
    doctor.set_defaults(run=run_doctor)


def _browser() -> tuple[bool, str, int | None]:
    from harvestkit.harvester.browser import browser_version, find_browser
    from harvestkit.harvester.errors import BrowserError

    try:
        executable = find_browser()
        version, major = browser_version(executable)
    except BrowserError as exc:
        return False, str(exc), None
    return True, f"{executable} ({version})", major


def _impersonation(major: int | None) -> tuple[bool, str]:
    import curl_cffi
    from harvestkit.client.impersonate import target_for

    return True, f"curl_cffi {curl_cffi.__version__}: {target_for(major)} for Chrome {major or '(none found)'}"


def _cache() -> tuple[bool, str]:
    from harvestkit.cache import AuthCache, open_store

    try:
        cache = open_store()
        records = cache.list_sync()
    except Exception as exc:  # noqa: BLE001 - e.g. CachePermissionError with the chmod to run, StoreUnavailable
        return False, str(exc)
    kind = "owner-only" if isinstance(cache, AuthCache) else "shared through Redis"
    return True, f"{cache.location}: {len(records)} session(s), {kind}"


def _proxy() -> tuple[bool, str] | None:
    proxy, ca = os.environ.get("HARVESTKIT_PROXY"), os.environ.get("HARVESTKIT_CA_BUNDLE")
    if not proxy and not ca:
        return None
    notes, ok = [], True
    if ca:
        try:
            ssl.create_default_context(cafile=ca)
            notes.append(f"CA bundle {ca} loads")
        except (OSError, ssl.SSLError) as exc:
            ok = False
            notes.append(f"CA bundle {ca} does not load: {exc}")
    if proxy:
        reached, detail = _try_connect(proxy)
        ok = ok and reached
        notes.append(detail)
    return ok, "; ".join(notes)


def _try_connect(proxy: str, host: str = "inference.cerebras.ai", timeout: float = 10.0) -> tuple[bool, str]:
    """Whether the proxy opens a tunnel to `host`:443 (a CONNECT, with its credentials if any)."""
    import base64
    import socket
    from urllib.parse import unquote, urlsplit

    from harvestkit.cache.redact import redact_url

    parts, named = urlsplit(proxy), redact_url(proxy)
    if parts.scheme not in ("http", ""):
        return True, f"proxy {named} (not an HTTP proxy: not probed)"
    head = f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n"
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        head += f"Proxy-Authorization: Basic {base64.b64encode(pair.encode()).decode()}\r\n"
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 8080), timeout=timeout) as conn:
            conn.sendall((head + "\r\n").encode())
            answer = b""
            while b"\r\n" not in answer and len(answer) < 4096:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                answer += chunk
    except OSError as exc:
        return False, f"proxy {named} cannot be reached: {exc.strerror or exc}"
    status = answer.split(b"\r\n", 1)[0].decode("latin-1", "replace")
    fields = status.split(" ", 2)
    if len(fields) >= 2 and fields[1] == "200":
        return True, f"proxy {named} opens a tunnel to {host}"
    if len(fields) >= 2 and fields[1] == "407":
        return False, f"proxy {named} refused CONNECT {host}:443 (HTTP 407): wrong or missing credentials"
    return False, f"proxy {named} refused CONNECT {host}:443 ({status or 'no answer'})"


def _clock() -> tuple[bool, str]:
    """The clock's offset from a server's Date header, when a proxy says how to reach one."""
    proxy = os.environ.get("HARVESTKIT_PROXY")
    local = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    if not proxy:
        return True, f"{local} (not compared: set HARVESTKIT_PROXY, or check NTP)"
    from curl_cffi import requests

    try:
        response = requests.get(
            "https://inference.cerebras.ai/api/auth/session",
            proxy=proxy,
            verify=os.environ.get("HARVESTKIT_CA_BUNDLE") or True,
            impersonate="chrome",
            timeout=10,
        )
        server = email.utils.parsedate_to_datetime(response.headers.get("date", "")).timestamp()
    except Exception as exc:  # noqa: BLE001 - a check, not an operation
        return False, f"{local}; cannot compare with a server: {type(exc).__name__}"
    skew = time.time() - server
    return abs(skew) < 60, f"{local}; {skew:+.1f} s from the server's clock"


def _config() -> tuple[bool, str]:
    """The config file and the gateway settings in effect (flags aside), secrets masked."""
    from harvestkit.common.config import ConfigError, effective, load_config

    try:
        described = effective(load_config()).describe()
    except ConfigError as exc:
        return False, str(exc)
    return True, "; ".join(f"{name}: {value}" for name, value in described.items())
def _flags(verdict: dict[str, Any], name: str) -> str:
    flags = verdict[name]
    return "clean" if not flags else "flagged " + ", ".join(flags)


def _browser_table(style: Style, fingerprint: Any, results: list[Any]) -> list[str]:
    """Each detector's verdict per mode, as a table."""
    if fingerprint is None:
        shown = "stealth off (HARVESTKIT_STEALTH=0)"
    else:
        shown = f"{fingerprint.timezone}, {','.join(fingerprint.languages)}, {fingerprint.screen[0]}x{fingerprint.screen[1]}"
    heads = [r.mode + (f" ({r.display})" if r.display == "Xvfb" else "") for r in results]
    rows: list[list[str]] = [["detector", *heads]]
    for name in ("botd", "fpscanner", "server"):
        row = [name]
        for result in results:
            row.append(_flags(result.verdict, name) if result.verdict else (result.skipped or result.error or "")[:60])
        rows.append(row)
    rows.append(["verdict", *[("passed" if r.verdict["passed"] else "REFUSED") if r.verdict else
                              ("skipped" if r.skipped else "FAILED") for r in results]])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [f"browser check (the sandbox's detector challenge): {shown}"]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)]
        if row[0] == "verdict":
            cells = [cells[0], *[style.good(c) if c.strip() in ("passed", "skipped") else style.bad(c) for c in cells[1:]]]
        lines.append("  " + "  ".join(cells).rstrip())
    return lines


def _run_browser_check(profile: str) -> tuple[Any, list[Any]] | str:
    import asyncio

    from harvestkit.harvester.stealth import StealthConfigError
    from harvestkit.harvester.stealth_check import check_browser

    try:
        return asyncio.run(check_browser(profile))
    except StealthConfigError as exc:
        return str(exc)


def run_doctor(args: argparse.Namespace) -> int:
    found, browser, major = _browser()
    checks: dict[str, tuple[bool, str]] = {"browser": (found, browser), "impersonation": _impersonation(major), "cache": _cache()}
    proxy = _proxy()
    if proxy is not None:
        checks["proxy"] = proxy
    checks["clock"] = _clock()
    checks["config"] = _config()
    browser_check = _run_browser_check(args.profile) if args.browser and found else None
    if isinstance(browser_check, str):
        checks["fingerprint"] = (False, browser_check)
        browser_check = None
    healthy = all(ok for ok, _ in checks.values()) and all(r.ok for r in (browser_check or (None, []))[1])
    if args.json:
        payload: dict[str, Any] = {"ok": healthy, "checks": {name: {"ok": ok, "detail": detail} for name, (ok, detail) in checks.items()}}
        if browser_check is not None:
            fingerprint, results = browser_check
            payload["browser_check"] = {
                "fingerprint": fingerprint.to_json() if fingerprint else None,
                "modes": [r.to_dict() for r in results],
            }
        print_json(payload)
    else:
        style = Style(sys.stdout)
        for name, (ok, detail) in checks.items():
            mark = style.good("ok  ") if ok else style.bad("FAIL")
            print(f"{mark} {name:<14} {detail}")
        if browser_check is not None:
            print("\n".join(_browser_table(style, *browser_check)))
    return OK if healthy else FAILURE
