"""One upstream call for a handler: route the model, check what the provider can honour, open
the observed stream.

Both APIs (chat completions and responses) come through here, so both get the same aliases,
the same strictness and the same metrics.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from harvestkit.client import ChatStream, Settings
from harvestkit.client.cloudflare import CARRIES
from harvestkit.client.pooled import pool_for

from .chat_request import invalid
from .observe import INFO
from .routing import Route
from .state import GATEWAY

__all__ = ["NO_OP", "check_generation", "open_stream"]

# What each Cloudflare generation honours: what the client says its request carries (spec
# 2.3-2.6: the agents socket's temperature, the HTTP body's max_tokens and tools), and `user`,
# which every generation accepts and none sends.
CLOUDFLARE_HONOURS = {family: carried | {"user"} for family, carried in CARRIES.items()}
_HONOURED_BY_ALL = frozenset.intersection(*CLOUDFLARE_HONOURS.values())
NO_OP: dict[str, tuple[object, ...]] = {
    "tools": ([],),
    "tool_choice": ("auto", "none"),
    "parallel_tool_calls": (True,),
    "top_p": (1, 1.0),
}


def _is_no_op(name: str, value: Any) -> bool:
    return any(value == default and type(value) is type(default) for default in NO_OP.get(name, ()))


def _questionable(params: dict[str, Any]) -> bool:
    """Whether a parameter is one some Cloudflare generation cannot honour (only then does the
    generation in use matter: most chats send none, and skip reading the session for it)."""
    return any(name not in _HONOURED_BY_ALL and not _is_no_op(name, value) for name, value in params.items())


def check_generation(generation: str | None, params: dict[str, Any]) -> None:
    """400 for a parameter the Cloudflare ``generation`` in use cannot honour (unknown: no check,
    the client library refuses what the generation it lands on cannot do)."""
    if generation is None:
        return
    family = "agents" if generation == "agents" else "http"
    honoured = CLOUDFLARE_HONOURS[family]
    for name, value in params.items():
        if name not in honoured and not _is_no_op(name, value):
            where = "agents WebSocket" if family == "agents" else f"{generation} endpoint"
            raise invalid(
                f"{name} cannot be honoured by the Cloudflare playground's current generation (the {where} "
                f"takes {', '.join(sorted(honoured - {'user'}))} only); remove it or use a cerebras/ model",
                name,
                "unsupported_parameter",
            )


async def _generation(route: Route, options: dict[str, Any]) -> str | None:
    """The Cloudflare generation the cached session last used, if known."""
    settings = (route.cls.settings or Settings.from_env()).with_overrides(dict(options))
    pool = pool_for(settings.pools, route.cls.site)
    profile = settings.profile if pool is None else pool.members[0].profile  # members share one site
    record = await settings.auth_cache().get(route.cls.site, profile)
    return record.generation if record is not None else None


async def open_stream(request: web.Request, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> ChatStream:
    """The provider's stream for ``model`` (user aliases resolved), observed for the log and the
    metrics; 400 for what the provider cannot honour, 404 for an unknown model."""
    gateway = request.app[GATEWAY]
    info = request[INFO]
    route = await gateway.catalog.route(gateway.aliases.get(model, model))
    options = gateway.options_for(route.provider)
    if route.provider == "cloudflare" and _questionable(params):
        check_generation(await _generation(route, options), params)
    resolved = route.cls.get_model(route.model)
    info.provider, info.model = route.provider, resolved
    info.stream = route.cls.stream(messages, resolved, **params, **options)  # observed through it, no layer more
    return info.stream
