"""The gateway's aiohttp application: routes, middlewares (request record, errors in OpenAI's
shape, the key check), CORS and the operational endpoints."""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiohttp import web
from harvestkit.client import PROVIDERS, ClientError, HarvestkitError, Settings
from harvestkit.client import aclose as close_client_sessions
from harvestkit.client.provider import Provider
from harvestkit.client.pooled import pool_for
from harvestkit.client.session_pool import SessionPool
from harvestkit.common.config import STREAM_FLUSH_MS, check_stream_flush, stream_flush_text

from .chat import chat_completions
from .cors import check_origins, enable_cors
from .errors import STORE_FAILURES, GatewayError, from_client_error, store_error
from .keys import Keys
from .metrics import Metrics
from .observe import INFO, REQUEST_ID_HEADER, RequestInfo, request_id_for, status_of
from .openai_format import model_object
from .responses import create_response, delete_response, get_response
from .routing import Catalog
from .sessions import session_states
from .state import GATEWAY, Gateway, RecentError
from .status_page import status_page

__all__ = ["DEFAULT_MAX_BODY", "create_app"]

logger = logging.getLogger("harvestkit.gateway")

DEFAULT_MAX_BODY = 8 * 1024 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}
PROTECTED = ("/", "/metrics")  # besides /v1/*: behind the key when there is one


def create_app(
    *,
    api_key: str | None = None,
    keys: Mapping[str, str] | None = None,
    profile: str | None = None,
    profiles: Mapping[str, str] | None = None,
    proxy: str | None = None,
    providers: Mapping[str, type[Provider]] | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    upstream_retries: int = 0,
    models_ttl: float = 60.0,
    cors_origins: Sequence[str] = (),
    aliases: Mapping[str, str] | None = None,
    summary: Mapping[str, Any] | None = None,
    pools: Sequence[SessionPool] = (),
    stream_flush_ms: float = STREAM_FLUSH_MS,
) -> web.Application:
    """The OpenAI-compatible application.

    ``api_key`` (named ``default``) and ``keys`` (name -> key): one of them is required as
    ``Authorization: Bearer`` on ``/v1/*``, ``/`` and ``/metrics`` when any is set. ``profile``:
    the harvested session profile (``profiles``: per provider). ``proxy``: the default upstream
    proxy. ``upstream_retries``: the client's own retries (0: the caller's SDK retries).
    ``models_ttl``: how long the model lists are kept (the one
    setting: it is also the client's ``models_ttl``). ``cors_origins``: page origins allowed to
    call ``/v1/*`` (``*`` only with a key). ``aliases``: user model names -> model ids.
    ``summary``: the configuration in effect, for the status page (no secrets).
    ``pools``: several sessions for a site (:class:`SessionPool`), one picked per request.
    ``stream_flush_ms``: at most one write per streamed response in this time, what arrives
    meanwhile joined (:mod:`.relay`; 0: each provider read is written at once).
    """
    check_stream_flush(stream_flush_ms, "stream_flush_ms")  # a ValueError (ConfigError) naming it
    all_keys = {**({"default": api_key} if api_key else {}), **(keys or {})}
    origins = check_origins(list(cors_origins), bool(all_keys))
    options: dict[str, Any] = {"max_retries": upstream_retries, "models_ttl": models_ttl}
    if profile:
        options["profile"] = profile
    if proxy:
        options["proxy"] = proxy
    if pools:
        options["pools"] = tuple(pools)
    chosen = dict(providers if providers is not None else PROVIDERS)
    per_provider = {name: {"profile": p} for name, p in (profiles or {}).items() if name in chosen and p}
    metrics = Metrics(pools=pools)
    gateway = Gateway(
        catalog=Catalog(chosen, options, models_ttl, per_provider),
        keys=Keys(all_keys),
        call_options=options,
        provider_options={name: {**per_provider.get(name, {}), "harvest": counting_harvest(cls, metrics)}
                          for name, cls in chosen.items()},  # fmt: skip
        max_body=max_body,
        aliases=dict(aliases or {}),
        cors_origins=origins,
        metrics=metrics,
        stream_flush=stream_flush_ms / 1000,
    )
    gateway.summary = {
        "keys": ", ".join(gateway.keys.names) or "none (loopback only)",
        "cors origins": ", ".join(origins) or "off",
        "model aliases": ", ".join(f"{a} -> {t}" for a, t in gateway.aliases.items()) or "none",
        "profile": profile or "default",
        "stream flush": stream_flush_text(stream_flush_ms),
        **{f"profile ({name})": p for name, p in (profiles or {}).items()},
        **{f"pool ({pool.site})": ", ".join(m.label for m in pool.members) for pool in pools},
        **(summary or {}),
    }
    app = web.Application(middlewares=[observe_requests, openai_errors, require_key], client_max_size=max_body)
    app[GATEWAY] = gateway
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/responses", create_response)
    app.router.add_get("/v1/responses/{id}", get_response)
    app.router.add_delete("/v1/responses/{id}", delete_response)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{model:.+}", get_model)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics_endpoint)
    app.router.add_get("/", status_page)
    app.on_response_prepare.append(_request_id_header)  # before CORS, which exposes the headers set so far
    enable_cors(app, origins)
    app.on_cleanup.append(_close_sessions)
    return app


def counting_harvest(cls: type[Provider], metrics: Metrics) -> Callable[..., Awaitable[Any]]:
    """The provider's harvest function, counting each harvest and its outcome."""

    async def harvest(site: str, **kwargs: Any) -> Any:
        inner = (cls.settings or Settings.from_env()).harvest
        if inner is None:
            from harvestkit.harvester import harvest as inner
        try:
            record = await inner(site, **kwargs)
        except Exception as exc:
            metrics.harvest(site, type(exc).__name__)
            raise
        except BaseException:
            metrics.harvest(site, "cancelled")
            raise
        metrics.harvest(site, "ok")
        return record

    return harvest


async def _close_sessions(app: web.Application) -> None:
    from harvestkit.cache.backend import close_shared_stores

    await close_client_sessions()
    await close_shared_stores()  # the Redis store's connections on this loop, if one is in use


async def _request_id_header(request: web.Request, response: web.StreamResponse) -> None:
    info = request.get(INFO)
    if info is not None:
        response.headers[REQUEST_ID_HEADER] = info.id


def error_response(error: GatewayError) -> web.Response:
    return web.json_response(error.body(), status=error.status, headers=error.headers)


def _finished(request: web.Request, info: RequestInfo, status: int) -> None:
    gateway = request.app[GATEWAY]
    info.status = status if info.status is None else info.status
    gateway.metrics.observe(info, info.status)
    if info.status >= 400 and info.endpoint != "unmatched":
        failure = info.upstream_failure
        message = info.error_message or (str(failure) if failure is not None else f"HTTP {info.status}")
        gateway.recent_errors.append(RecentError(time.time(), info.id, info.provider, info.status, message[:300]))


@web.middleware
async def observe_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The request's record (id, endpoint, timings), counted in the metrics when it ends."""
    info = RequestInfo(request_id_for(request.headers.get(REQUEST_ID_HEADER)), time.monotonic())
    resource = request.match_info.route.resource
    info.endpoint = resource.canonical if resource is not None else "unmatched"
    request[INFO] = info
    try:
        response = await handler(request)
    except BaseException as exc:
        _finished(request, info, status_of(exc))
        raise
    _finished(request, info, response.status)
    return response


@web.middleware
async def openai_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure before a response started, as ``{"error": {...}}`` with its status."""
    info = request[INFO]
    try:
        return await handler(request)
    except GatewayError as error:
        info.error_message = error.message
        return error_response(error)
    except ClientError as error:
        mapped = from_client_error(error)
        info.error_message = mapped.message
        logger.warning("%s %s: %s (answered %d)", request.method, request.path, error, mapped.status)
        return error_response(mapped)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = exc.reason
        if exc.status == 413:
            message = f"the request body is larger than {request.app[GATEWAY].max_body} bytes"
        info.error_message = message
        return error_response(GatewayError(exc.status, message, "invalid_request_error", HTTP_CODES.get(exc.status)))
    except STORE_FAILURES as error:  # before ConnectionError: StoreUnavailable is one
        logger.error("%s %s: %s", request.method, request.path, error)
        info.error_message = str(error)
        return error_response(store_error(error))
    except ConnectionError:
        raise  # the client left: nothing to answer
    except HarvestkitError as error:  # e.g. the session cache refused a wrong permission
        logger.error("%s %s: %s", request.method, request.path, error)
        info.error_message = str(error)
        return error_response(GatewayError(500, str(error), "server_error", "internal_error"))
    except Exception:
        logger.exception("%s %s failed", request.method, request.path)
        return error_response(GatewayError(500, "internal gateway error", "server_error", "internal_error"))


def _presented_key(request: web.Request) -> str | None:
    """The key in ``Authorization``: ``Bearer <key>``, or Basic with the key as password (browsers)."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    given = given.strip()
    if scheme.lower() == "bearer" and given:
        return given
    if scheme.lower() == "basic" and given:
        try:
            _, _, password = base64.b64decode(given, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return password or None
    return None


@web.middleware
async def require_key(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One of the gateway's keys on ``/v1/*``, ``/`` and ``/metrics`` when it has any (a CORS
    preflight carries none and passes); the request records the key's name."""
    keys = request.app[GATEWAY].keys
    protected = request.path.startswith("/v1/") or request.path in PROTECTED
    preflight = request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
    if not keys or not protected or preflight:
        return await handler(request)
    challenge = 'Basic realm="harvestkit gateway"' if request.path in PROTECTED else "Bearer"
    given = _presented_key(request)
    if given is None:
        raise GatewayError(401, "missing API key: send 'Authorization: Bearer <key>'", "authentication_error",
                           "missing_api_key", headers={"WWW-Authenticate": challenge})  # fmt: skip
    name = keys.match(given)
    if name is None:
        raise GatewayError(401, "incorrect API key", "authentication_error", "invalid_api_key",
                           headers={"WWW-Authenticate": challenge})  # fmt: skip
    request[INFO].key_name = name
    return await handler(request)


async def _listing(gateway: Gateway) -> list[dict[str, Any]]:
    """The catalog's models, then the user's aliases whose target a provider offers."""
    listing = (await gateway.catalog.table()).listing()
    known = {model["id"]: model["owned_by"] for model in listing}
    for alias, target in gateway.aliases.items():
        owner = known.get(target) or target.partition("/")[0]
        if owner in gateway.catalog.providers:
            listing.append(model_object(alias, owner))
    return listing


async def list_models(request: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": await _listing(request.app[GATEWAY])})


async def get_model(request: web.Request) -> web.Response:
    wanted = request.match_info["model"]
    for model in await _listing(request.app[GATEWAY]):
        if model["id"] == wanted:
            return web.json_response(model)
    raise GatewayError(404, f"the model '{wanted}' does not exist", "invalid_request_error", "model_not_found", "model")


async def health(request: web.Request) -> web.Response:
    """Liveness only: the process answers."""
    return web.json_response({"status": "ok", "providers": list(request.app[GATEWAY].catalog.providers)})


async def ready(request: web.Request) -> web.Response:
    """200 when at least one provider has a usable session; else 503, each provider saying why."""
    gateway = request.app[GATEWAY]
    providers = gateway.catalog.providers
    states = await session_states(providers, {name: gateway.options_for(name) for name in providers})
    usable = any(state.ready for state in states)
    shared = {s.provider for s in states if sum(t.provider == s.provider for t in states) > 1}  # pools
    named = {f"{s.provider}/{s.profile}" if s.provider in shared else s.provider: s.as_dict() for s in states}
    body = {"status": "ready" if usable else "not ready", "providers": named}
    return web.json_response(body, status=200 if usable else 503)


async def metrics_endpoint(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    for name, cls in gateway.catalog.providers.items():
        pool = pool_for(gateway.options_for(name).get("pools"), cls.site)
        if pool is not None:  # the members' records, as fresh as a request would see them
            await pool.sync((cls.settings or Settings.from_env()).with_overrides(gateway.options_for(name)).auth_cache())
    return gateway.metrics.response()
