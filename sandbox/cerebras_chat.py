"""chat.cerebras.ai: the other host that hands out the demo key (spec 4.1).

`POST /api/graphql` with `GetMyDemoApiKey` answers as inference.cerebras.ai's does, for the same
`.cerebras.ai` session cookie, and allows the inference site's origin with credentials (CORS), so
the demo page can fetch its key from here (the `key_host` knob).
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from .cerebras_web import CerebrasWeb

HOST = "chat.cerebras.ai"
ALLOWED_ORIGIN = "https://inference.cerebras.ai"


class CerebrasChat:
    """Routes of chat.cerebras.ai."""

    def __init__(self, web_site: CerebrasWeb) -> None:
        self.web_site = web_site

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.cors])
        app.router.add_post("/api/graphql", self.web_site.graphql)
        app.router.add_route("OPTIONS", "/api/graphql", self.preflight)
        return app

    async def preflight(self, request: web.Request) -> web.Response:
        return web.Response(
            status=204,
            headers={
                "access-control-allow-methods": "POST, OPTIONS",
                "access-control-allow-headers": request.headers.get("Access-Control-Request-Headers", "content-type"),
                "access-control-max-age": "600",
            },
        )

    @web.middleware
    async def cors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        if request.headers.get("Origin") == ALLOWED_ORIGIN:
            response.headers["access-control-allow-origin"] = ALLOWED_ORIGIN
            response.headers["access-control-allow-credentials"] = "true"
            response.headers["vary"] = "Origin"
        return response
