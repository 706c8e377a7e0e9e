"""CORS for browser clients (aiohttp-cors), off unless origins are configured.

``--cors-origin`` (repeatable) or the config's ``gateway.cors_origins`` list the page origins
that may call the API; ``*`` allows any origin and is accepted only when the gateway has a key
(otherwise any web page a user visits could spend the harvested sessions). Preflights are
answered for every API route with the methods it has and the headers asked for
(``authorization``, ``content-type``, the SDKs' ``x-stainless-*``...); responses expose their
headers (``x-request-id``, ``retry-after``...). Credentials (cookies) are never allowed: the
key travels in ``Authorization``.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

import aiohttp_cors
from aiohttp import web
from harvestkit.cache.errors import HarvestkitError

__all__ = ["CorsConfigError", "check_origins", "enable_cors"]

MAX_AGE = 600  # seconds a browser may cache a preflight answer


class CorsConfigError(HarvestkitError, ValueError):
    """An origin list the gateway refuses; the message says how to fix it."""


def check_origins(origins: Sequence[str], has_key: bool) -> list[str]:
    """The origins, normalised (no trailing slash); :class:`CorsConfigError` for a malformed
    one or for ``*`` without a key."""
    checked = []
    for origin in origins:
        origin = origin.strip().rstrip("/")
        if origin == "*":
            if not has_key:
                raise CorsConfigError(
                    "--cors-origin '*' lets any web page use the gateway: it needs a gateway key "
                    "(HARVESTKIT_GATEWAY_KEY or HARVESTKIT_GATEWAY_KEYS), or name the origins"
                )
        else:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
                raise CorsConfigError(f"not an origin: {origin!r} (use scheme://host[:port], e.g. http://localhost:3000)")
        checked.append(origin)
    return list(dict.fromkeys(checked))


async def _vary(request: web.Request, response: web.StreamResponse) -> None:
    if "Origin" in request.headers and "Access-Control-Allow-Origin" in response.headers:
        vary = response.headers.get("Vary")
        response.headers["Vary"] = f"{vary}, Origin" if vary and "origin" not in vary.lower() else vary or "Origin"


def enable_cors(app: web.Application, origins: Sequence[str], prefixes: Sequence[str] = ("/v1/",)) -> None:
    """Answer CORS for the routes under ``prefixes``, for ``origins`` (none: CORS stays off)."""
    if not origins:
        return
    options = aiohttp_cors.ResourceOptions(allow_credentials=False, expose_headers="*", allow_headers="*", max_age=MAX_AGE)
    cors = aiohttp_cors.setup(app, defaults={origin: options for origin in origins})
    for route in list(app.router.routes()):
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter") or ""
        if route.method != "OPTIONS" and any(path.startswith(prefix) for prefix in prefixes):
            cors.add(route)
    app.on_response_prepare.append(_vary)
