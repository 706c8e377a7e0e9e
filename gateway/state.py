"""What every handler of one gateway shares: its key, its model catalog and the call options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .routing import Catalog

__all__ = ["GATEWAY", "Gateway"]


@dataclass
class Gateway:
    """One gateway's configuration and model catalog."""

    catalog: Catalog
    api_key: str | None = None
    call_options: dict[str, Any] = field(default_factory=dict)  # client keywords for every call
    max_body: int = 8 * 1024 * 1024  # the largest request body accepted, in bytes


GATEWAY = web.AppKey("gateway", Gateway)
