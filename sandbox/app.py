"""One aiohttp application serving the three replica hosts by their Host header, logging every request."""
from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from . import cerebras_api, cerebras_chat, cerebras_web, cloudflare_front, keys, streaming
from .accounts import Accounts
from .compression import compressor
from .cerebras_api import CerebrasAPI
from .cerebras_web import CerebrasWeb
from .cloudflare_api import CloudflarePlayground
from .cloudflare_front import CloudflareFront
from .state import LoggedHeaders, LoggedRequest, SandboxState

HOSTS = (cerebras_web.HOST, cerebras_api.HOST, cloudflare_front.HOST, cerebras_chat.HOST)


def request_protocol(request: web.Request) -> str:
    """"h2" for a request that came on an HTTP/2 stream, "http/1.1" otherwise."""
    transport = request.transport
    return "h2" if transport is not None and transport.get_extra_info("h2_stream_id") is not None else "http/1.1"


def repeated_headers(request: web.Request) -> dict[str, int]:
    """The header names a request sent more than once (lower case), with their counts."""
    counts: dict[str, int] = {}
    for name in request.headers:
        counts[name.lower()] = counts.get(name.lower(), 0) + 1
    return {name: n for name, n in counts.items() if n > 1}


def build_app(state: SandboxState, accounts: Accounts) -> web.Application:
    """The replica of inference.cerebras.ai, api.cerebras.ai and playground.ai.cloudflare.com."""

    @web.middleware
    async def log_requests(request: web.Request, handler: Any) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        tunnel = state.tunnel_by_peer.get(tuple(peer[:2])) if peer else None
        request[keys.CLIENT_CLASS] = tunnel.client_class if tunnel else None
        request[keys.TUNNEL_ID] = tunnel.id if tunnel else None
        request[keys.H2_CLASS] = tunnel.h2_class if tunnel else None
        request[keys.H2_MISMATCH] = tunnel.h2_mismatch if tunnel else None
        host = request.host.rsplit(":", 1)[0].lower() if request.host else ""
        entry = LoggedRequest(
            time=time.time(),
            tunnel=request[keys.TUNNEL_ID],
            host=host,
            method=request.method,
            path=request.path_qs,
            headers=LoggedHeaders(request.headers.items()),
            cookies=dict(request.cookies),
            client_class=request[keys.CLIENT_CLASS],
            protocol=request_protocol(request),
            h2_fingerprint=tunnel.h2_fingerprint if tunnel else None,
            repeated_headers=repeated_headers(request),
        )
        state.requests.append(entry)
        try:
            if tunnel is not None and host != tunnel.host:
                entry.note = f"Host {host!r} inside a tunnel to {tunnel.host!r}"
                response: web.StreamResponse = web.Response(status=421, text="Misdirected Request")
            else:
                response = await handler(request)
            entry.status = response.status
            return response
        except web.HTTPException as exc:
            entry.status = exc.status
            raise
        except Exception:
            entry.status, entry.outcome = 500, "error"
            raise
        finally:
            entry.route = request.get(keys.ROUTE)
            entry.note = request.get(keys.NOTE, entry.note)
            entry.outcome = request.get(keys.OUTCOME, entry.outcome)

    app = web.Application(middlewares=[log_requests], client_max_size=8 * 1024 * 1024)
    app.on_response_prepare.append(compressor(state))
    app[streaming.KNOBS] = lambda: state.knobs
    web_site = CerebrasWeb(state, accounts)
    app.add_domain(cerebras_web.HOST, web_site.app())
    app.add_domain(cerebras_chat.HOST, cerebras_chat.CerebrasChat(web_site).app())
    app.add_domain(cerebras_api.HOST, CerebrasAPI(state, accounts).app())
    app.add_domain(
        cloudflare_front.HOST, CloudflarePlayground(state, CloudflareFront(state)).app()
    )
    return app
