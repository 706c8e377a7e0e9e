"""Running the gateway: ``async with serve(...) as url`` and the bind rule (the access log's
line is :class:`.observe.AccessLogger`).

A listener on anything but loopback needs an API key: without one, anyone who can reach the
port could spend the harvested sessions. Disconnected clients cancel their handler (and so
the upstream stream); stopping waits ``shutdown_timeout`` for requests in flight.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from harvestkit.cache.errors import HarvestkitError

from .app import create_app
from .observe import AccessLogger

__all__ = ["ACCESS_LOG", "AccessLogger", "InsecureBind", "check_bind", "is_loopback", "serve"]

ACCESS_LOG = logging.getLogger("harvestkit.gateway.access")
KEEPALIVE_TIMEOUT = 75.0
"""Seconds a connection may stay idle, or sit on an unfinished request head (aiohttp's
``AppRunner`` default is an hour: slow-header clients could hold sockets that long)."""


class InsecureBind(HarvestkitError, ValueError):
    """A non-loopback address without an API key (a configuration error, raised before any
    socket is opened)."""


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals; any other name counts as reachable."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, api_key: object) -> None:
    """Raise :class:`InsecureBind` for a non-loopback ``host`` without a key (``api_key``: a
    key or a mapping of named keys)."""
    if not api_key and not is_loopback(host):
        raise InsecureBind(
            f"refusing to listen on {host} without an API key: anyone who can reach it could use "
            "your harvested sessions. Set HARVESTKIT_GATEWAY_KEY or HARVESTKIT_GATEWAY_KEYS (or --api-key), or bind 127.0.0.1."
        )


def url_for(host: str, port: int) -> str:
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}"


@contextlib.asynccontextmanager
async def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    api_key: str | None = None,
    shutdown_timeout: float = 10.0,
    **options: Any,
) -> AsyncIterator[str]:
    """Serve the gateway in the running loop; yields its base URL (``http://host:port``; the
    OpenAI ``base_url`` is that plus ``/v1``). ``options`` go to :func:`create_app`. Raises
    :class:`InsecureBind` for a non-loopback host without a key, ``OSError`` if it cannot listen."""
    check_bind(host, api_key or options.get("keys"))
    app = create_app(api_key=api_key, **options)
    runner = web.AppRunner(
        app,
        handler_cancellation=True,
        access_log_class=AccessLogger,
        access_log=ACCESS_LOG,
        shutdown_timeout=shutdown_timeout,
        keepalive_timeout=KEEPALIVE_TIMEOUT,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0]
        yield url_for(host, bound[1])
    finally:
        await runner.cleanup()
