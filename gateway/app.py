"""The gateway's aiohttp application: routes, the API key check and errors in OpenAI's shape."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from harvestkit.client import PROVIDERS, ClientError, HarvestkitError
from harvestkit.client import aclose as close_client_sessions
from harvestkit.client.provider import Provider

from .chat import chat_completions
from .errors import GatewayError, from_client_error
from .routing import Catalog
from .state import GATEWAY, Gateway

__all__ = ["DEFAULT_MAX_BODY", "create_app"]

logger = logging.getLogger("harvestkit.gateway")

DEFAULT_MAX_BODY = 8 * 1024 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}


def create_app(
    *,
    api_key: str | None = None,
    profile: str | None = None,
    providers: Mapping[str, type[Provider]] | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    upstream_retries: int = 0,
    models_ttl: float = 60.0,
) -> web.Application:
    """The OpenAI-compatible application.

    ``api_key``: required as ``Authorization: Bearer`` on ``/v1/*`` when set. ``profile``: the
    harvested session profile to use. ``upstream_retries``: the client's own retries (0: the
    caller's SDK retries, honouring ``retry-after``). ``models_ttl``: how long the model
    lists used for bare ids, ``/v1/models`` and the model check are kept (the one setting: it
    is also the client's ``models_ttl``).
    """
    options: dict[str, object] = {"max_retries": upstream_retries, "models_ttl": models_ttl}
    if profile:
        options["profile"] = profile
    chosen = dict(providers if providers is not None else PROVIDERS)
    gateway = Gateway(Catalog(chosen, options, models_ttl), api_key or None, options, max_body)
    app = web.Application(middlewares=[openai_errors, require_key], client_max_size=max_body)
    app[GATEWAY] = gateway
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{model:.+}", get_model)
    app.router.add_get("/health", health)
    app.on_cleanup.append(_close_sessions)
    return app


async def _close_sessions(app: web.Application) -> None:
    await close_client_sessions()


def error_response(error: GatewayError) -> web.Response:
    return web.json_response(error.body(), status=error.status, headers=error.headers)


@web.middleware
async def openai_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure before a response started, as ``{"error": {...}}`` with its status."""
    try:
        return await handler(request)
    except GatewayError as error:
        return error_response(error)
    except ClientError as error:
        mapped = from_client_error(error)
        logger.warning("%s %s: %s (answered %d)", request.method, request.path, error, mapped.status)
        return error_response(mapped)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = exc.reason
        if exc.status == 413:
            message = f"the request body is larger than {request.app[GATEWAY].max_body} bytes"
        return error_response(GatewayError(exc.status, message, "invalid_request_error", HTTP_CODES.get(exc.status)))
    except ConnectionError:
        raise  # the client left: nothing to answer
    except HarvestkitError as error:  # e.g. the session cache refused a wrong permission
        logger.error("%s %s: %s", request.method, request.path, error)
        return error_response(GatewayError(500, str(error), "server_error", "internal_error"))
    except Exception:
        logger.exception("%s %s failed", request.method, request.path)
        return error_response(GatewayError(500, "internal gateway error", "server_error", "internal_error"))


@web.middleware
async def require_key(request: web.Request, handler: Handler) -> web.StreamResponse:
    """``Authorization: Bearer <key>`` on ``/v1/*`` when the gateway has a key (constant-time)."""
    key = request.app[GATEWAY].api_key
    if key is None or not request.path.startswith("/v1/"):
        return await handler(request)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise GatewayError(401, "missing API key: send 'Authorization: Bearer <key>'", "authentication_error",
                           "missing_api_key", headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    if not hmac.compare_digest(_digest(given.strip()), _digest(key)):
        raise GatewayError(401, "incorrect API key", "authentication_error", "invalid_api_key",
                           headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    return await handler(request)


def _digest(text: str) -> bytes:
    """A fixed-length digest, so the comparison does not reveal the key's length either."""
    return hashlib.sha256(text.encode()).digest()


async def list_models(request: web.Request) -> web.Response:
    table = await request.app[GATEWAY].catalog.table()
    return web.json_response({"object": "list", "data": table.listing()})


async def get_model(request: web.Request) -> web.Response:
    wanted = request.match_info["model"]
    table = await request.app[GATEWAY].catalog.table()
    for model in table.listing():
        if model["id"] == wanted:
            return web.json_response(model)
    raise GatewayError(404, f"the model '{wanted}' does not exist", "invalid_request_error", "model_not_found", "model")


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "providers": list(request.app[GATEWAY].catalog.providers)})
