"""api.cerebras.ai as it is today (spec 4.1): retired models (the default), fragmented tool calls, `event: error`,
and Cloudflare's HTML block page in front of the API. Each is a knob (see `Knobs`)."""
from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web

from .state import Knobs

KNOBS = web.AppKey("harvestkit.knobs", Callable[[], Knobs])  # the live knobs (reset() replaces them)

# (id, owner, created). The 2026-08 public list; the older ids answer 404 while `retire_models` is on.
CURRENT_MODELS = (
    ("gpt-oss-120b", "OpenAI", 1754352000),
    ("gemma-4-31b", "Google", 1775001600),
)
RETIRED = (
    ("llama3.1-8b", "Meta", 1721692800),
    ("llama-3.3-70b", "Meta", 1733443200),
    ("qwen-3-235b-a22b-instruct-2507", "Alibaba", 1753142400),
    ("zai-glm-4.7", "Z.ai", 1765497600),
)
RETIRED_MODELS = frozenset(model for model, _, _ in RETIRED)
LEGACY_MODELS = RETIRED + CURRENT_MODELS  # what the API served before the retirement

BLOCK_PAGE = """<!DOCTYPE html>
<html lang="en-US"><head><title>Attention Required! | Cloudflare</title>
<meta charset="UTF-8"><meta name="robots" content="noindex, nofollow"></head>
<body><div id="cf-wrapper"><div id="cf-error-details" class="cf-error-details-wrapper">
<h1 data-translate="block_headline">Sorry, you have been blocked</h1>
<h2 class="cf-subheadline"><span data-translate="unable_to_access">You are unable to access</span> api.cerebras.ai</h2>
<p>This website is using a security service to protect itself from online attacks.</p>
<p class="cf-footer-item">Cloudflare Ray ID: <strong class="font-semibold">{ray}</strong></p>
</div></div></body></html>
"""


def live_models(knobs: Knobs) -> tuple[tuple[str, str, int], ...]:
    """The models the API lists and serves: only the current ones while `retire_models` is on."""
    return CURRENT_MODELS if knobs.retire_models else LEGACY_MODELS


def not_found(model: str) -> web.Response:
    """The 404 a retired or unknown model id gets, in the API's words."""
    body = {
        "message": f"Model {model} does not exist or you do not have access to it.",
        "type": "not_found_error",
        "param": "model",
        "code": "model_not_found",
    }
    return web.json_response(body, status=404)


def block_page() -> web.Response:
    """Cloudflare's 403 block page, as the API's front sends it to a client it refuses."""
    ray = secrets.token_hex(8)
    return web.Response(
        status=403,
        text=BLOCK_PAGE.format(ray=ray),
        content_type="text/html",
        headers={"server": "cloudflare", "cf-ray": f"{ray}-SJC", "cache-control": "private, no-store"},
    )


def tool_call_deltas(call: dict[str, Any], pieces: int = 4) -> Iterator[dict[str, Any]]:
    """A tool call as streamed in fragments: id and name first, then the arguments in pieces,
    each delta keyed by `index` only (spec 4.1: every field of a tool-call delta is optional)."""
    arguments = call["function"]["arguments"]
    yield {"tool_calls": [{"index": 0, "id": call["id"], "type": "function", "function": {"name": call["function"]["name"], "arguments": ""}}]}
    size = max(1, -(-len(arguments) // pieces))
    for start in range(0, len(arguments), size):
        yield {"tool_calls": [{"index": 0, "function": {"arguments": arguments[start : start + size]}}]}


def error_event(message: str = "Internal server error", status: int = 500) -> bytes:
    """A mid-stream error as `event: error` (what the SDKs' decoders raise on)."""
    body = {"error": {"message": message, "type": "server_error", "code": "internal_error"}, "status_code": status}
    return b"event: error\ndata: " + json.dumps(body).encode() + b"\n\n"


@web.middleware
async def blocked_front(request: web.Request, handler: Any) -> web.StreamResponse:
    """While the `api_block_page` knob is on, the API's front answers every request with its block page."""
    knobs = request.app[KNOBS]()
    if knobs.api_block_page:
        return block_page()
    return await handler(request)
