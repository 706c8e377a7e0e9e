"""Writing Set-Cookie headers exactly as the real hosts do (aiohttp's helper lacks Partitioned)."""
from __future__ import annotations

from email.utils import formatdate

from aiohttp import web


def set_cookie(
    response: web.StreamResponse,
    name: str,
    value: str,
    *,
    expires: float | None = None,
    domain: str | None = None,
    path: str = "/",
    http_only: bool = True,
    same_site: str | None = "Lax",
    partitioned: bool = False,
) -> None:
    """Add one Set-Cookie header (always Secure: every sandboxed host is HTTPS only)."""
    parts = [f"{name}={value}", f"Path={path}"]
    if expires is not None:
        parts.append("Expires=" + formatdate(expires, usegmt=True))
    if domain:
        parts.append(f"Domain={domain}")
    if http_only:
        parts.append("HttpOnly")
    parts.append("Secure")
    if same_site:
        parts.append(f"SameSite={same_site}")
    if partitioned:
        parts.append("Partitioned")
    response.headers.add("Set-Cookie", "; ".join(parts))


def delete_cookie(response: web.StreamResponse, name: str, *, domain: str | None = None) -> None:
    """Expire a cookie now."""
    set_cookie(response, name, "", expires=0, domain=domain)
