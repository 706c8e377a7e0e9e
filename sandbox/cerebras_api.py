"""api.cerebras.ai: the OpenAI-compatible API, streamed the way Cerebras streams (spec 1.2)."""
from __future__ import annotations

import json
import secrets
import time
from typing import Any

from aiohttp import web

from . import cerebras_strict as strict
from . import keys
from .accounts import Accounts
from .cerebras_stream import Completion
from .state import Fault, SandboxState, per_stream
from .streaming import stream_http
from .textgen import Reply, make_reply

HOST = "api.cerebras.ai"
WEB_ORIGIN = "https://inference.cerebras.ai"
REASONING_MODELS = frozenset({"gpt-oss-120b", "zai-glm-4.7"})
DAILY_REQUESTS, TOKENS_PER_MINUTE = 14400, 60000

WRONG_KEY = {
    "message": "Wrong API Key",
    "type": "invalid_request_error",
    "param": "api_key",
    "code": "wrong_api_key",
}
NO_MODEL = {
    "message": "Model does not exist or you do not have access to it.",
    "type": "not_found_error",
    "param": "model",
    "code": "model_not_found",
}
TOO_MANY = {
    "message": "Requests per minute limit exceeded - too many requests sent.",
    "type": "too_many_requests_error",
    "param": "quota",
    "code": "request_quota_exceeded",
}


def bad_format(message: str, status: int = 400) -> web.Response:
    body = {
        "message": message,
        "type": "invalid_request_error",
        "param": "validation_error",
        "code": "wrong_api_format",
    }
    return web.json_response(body, status=status)


def forced_error(fault: Fault) -> web.Response:
    """The response for a fault's forced status, in Cerebras' top-level error shape."""
    status = fault.status or 500
    headers: dict[str, str] = {}
    if fault.retry_after is not None:
        headers["retry-after"] = f"{fault.retry_after:g}"
    if fault.retry_after_ms is not None:
        headers["retry-after-ms"] = str(fault.retry_after_ms)
    if status == 401:
        body: dict[str, Any] = WRONG_KEY
    elif status == 403:
        body = {"detail": "Not authenticated"}
    elif status == 404:
        body = NO_MODEL
    elif status == 429:
        body = TOO_MANY
        headers["x-ratelimit-reset-tokens-minute"] = f"{fault.reset_tokens_minute:g}"
    elif status in (400, 422):
        return bad_format("Forced validation failure", status)
    else:
        body = {"message": "Internal server error", "type": "server_error", "param": None, "code": None}
    return web.json_response(body, status=status, headers=headers)


class CerebrasAPI:
    """Routes of api.cerebras.ai."""

    def __init__(self, state: SandboxState, accounts: Accounts) -> None:
        self.state, self.accounts = state, accounts
        self.requests_today = 0
        self.tokens_this_minute: tuple[int, int] = (0, 0)  # (minute, tokens)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[strict.blocked_front, self.common_headers])
        app[strict.KNOBS] = lambda: self.state.knobs
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/v1/models/{model}", self.model)
        app.router.add_get("/v1/tcp_warming", self.tcp_warming)
        app.router.add_post("/v1/chat/completions", self.chat)
        return app

    # -- every response -------------------------------------------------------------------------
    @web.middleware
    async def common_headers(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests_today += 1
        try:
            response = await (self.preflight(request) if request.method == "OPTIONS" else handler(request))
        except web.HTTPException as exc:  # unknown path or method: FastAPI's shape
            response = web.json_response({"detail": exc.reason}, status=exc.status)
        self.add_headers(request, response)
        return response

    def add_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        if response.prepared:
            return
        now = time.time()
        minute, used = self.tokens_this_minute
        response.headers.update(
            {
                "x-ratelimit-limit-requests-day": str(DAILY_REQUESTS),
                "x-ratelimit-limit-tokens-minute": str(TOKENS_PER_MINUTE),
                "x-ratelimit-remaining-requests-day": str(max(DAILY_REQUESTS - self.requests_today, 0)),
                "x-ratelimit-remaining-tokens-minute": response.headers.get(
                    "x-ratelimit-remaining-tokens-minute",
                    str(max(TOKENS_PER_MINUTE - (used if minute == int(now // 60) else 0), 0)),
                ),
                "x-ratelimit-reset-requests-day": f"{86400 - now % 86400:.3f}",
                "x-ratelimit-reset-tokens-minute": response.headers.get(
                    "x-ratelimit-reset-tokens-minute", f"{60 - now % 60:.3f}"
                ),
            }
        )
        origin = request.headers.get("Origin")
        if origin == WEB_ORIGIN:
            response.headers["access-control-allow-origin"] = origin
            response.headers["vary"] = "Origin"

    async def preflight(self, request: web.Request) -> web.Response:
        """CORS for the web demo, which calls this API from the browser."""
        return web.Response(
            status=204,
            headers={
                "access-control-allow-methods": "GET, POST, OPTIONS",
                "access-control-allow-headers": request.headers.get(
                    "Access-Control-Request-Headers", "authorization, content-type"
                ),
                "access-control-max-age": "600",
            },
        )

    def unauthorized(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        if not header:
            return web.json_response({"detail": "Not authenticated"}, status=403)
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not self.accounts.key_valid(key.strip()):
            return web.json_response(WRONG_KEY, status=401)
        return None

    # -- endpoints --------------------------------------------------------------------------
    async def tcp_warming(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def models(self, request: web.Request) -> web.Response:
        request[keys.ROUTE] = "cerebras.models"
        fault = self.state.take_fault("cerebras.models")
        if fault is not None and fault.status:
            return forced_error(fault)
        if (refusal := self.unauthorized(request)) is not None:
            return refusal
        data = [
            {"id": m, "object": "model", "created": c, "owned_by": o}
            for m, o, c in strict.live_models(self.state.knobs)
        ]
        return web.json_response({"object": "list", "data": data})

    async def model(self, request: web.Request) -> web.Response:
        if (refusal := self.unauthorized(request)) is not None:
            return refusal
        for model, owner, created in strict.live_models(self.state.knobs):
            if model == request.match_info["model"]:
                return web.json_response(
                    {"id": model, "object": "model", "created": created, "owned_by": owner}
                )
        return web.json_response(NO_MODEL, status=404)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        request[keys.ROUTE] = "cerebras.chat"
        fault = self.state.take_fault("cerebras.chat")
        if fault is not None and fault.status:
            return forced_error(fault)
        if (refusal := self.unauthorized(request)) is not None:
            return refusal
        if request.headers["Authorization"].partition(" ")[2].strip() in self.state.knobs.rate_limited_keys:
            return web.json_response(TOO_MANY, status=429, headers={
                "x-ratelimit-remaining-tokens-minute": "0",
                "x-ratelimit-reset-tokens-minute": f"{self.state.knobs.rate_limit_reset:g}",
            })  # fmt: skip
        try:
            body = json.loads(await request.read())
        except ValueError:
            return bad_format("Request body is not valid JSON", 400)
        if not isinstance(body, dict):
            return bad_format("Request body must be a JSON object", 422)
        problem = validate(body)
        if problem:
            return bad_format(problem, 422 if "messages" in problem else 400)
        unknown = unknown_message_property(body["messages"])
        if unknown:
            return bad_format(unknown, 400)
        model = body["model"]
        if model not in {m for m, _, _ in strict.live_models(self.state.knobs)}:
            return strict.not_found(model)
        reply = make_reply(
            body["messages"],
            max_tokens=body.get("max_completion_tokens", body.get("max_tokens")),
            reply_tokens=self.state.knobs.reply_tokens,
            reasoning=model in REASONING_MODELS,
        )
        self.count_tokens(reply)
        knobs = self.state.knobs
        completion = Completion(
            model,
            reply,
            tool_call(body),
            envelope=knobs.envelope,
            usage_chunk=knobs.usage_chunk,
            fragmented=per_stream(knobs.fragment_tool_calls),
        )
        if not body.get("stream"):
            return web.json_response(completion.whole())
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
        )
        self.add_headers(request, response)
        return await stream_http(
            request,
            response,
            completion.sse(batch=1 if fault is not None or self.state.knobs.pace > 0 else 32),
            fault=fault,
            pace=self.state.knobs.pace,
            malformed=b'data: {"id":"' + completion.id.encode() + b'","choices":[{"delta":{"content":"brok\n\n',
            error=strict.error_event()
            if per_stream(knobs.sse_error_event)
            else b"data: "
            + json.dumps(
                {
                    "error": {"message": "Internal server error", "type": "server_error", "code": "internal_error"},
                    "status_code": 500,
                }
            ).encode()
            + b"\n\n",
        )

    def count_tokens(self, reply: Reply) -> None:
        minute = int(time.time() // 60)
        current, used = self.tokens_this_minute
        used = used if current == minute else 0
        self.tokens_this_minute = (minute, used + reply.prompt_tokens + reply.completion_tokens)


def validate(body: dict[str, Any]) -> str | None:
    """What is wrong with a chat request, in the API's words, or None."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: field required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: a non-empty list of messages is required"
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant", "tool"):
            return "messages: each message needs a role of system, user, assistant or tool"
    temperature = body.get("temperature")
    if temperature is not None and not (isinstance(temperature, (int, float)) and 0 <= temperature <= 1.5):
        return "temperature: must be between 0 and 1.5"
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            return f"{name}: must be a positive integer"
    return None


# The properties the API documents for a message of each role (spec 4.1: any other is a 400).
MESSAGE_FIELDS = {
    "system": {"role", "content", "name"},
    "user": {"role", "content", "name"},
    "assistant": {"role", "content", "name", "tool_calls"},
    "tool": {"role", "content", "tool_call_id", "name"},
}


def unknown_message_property(messages: list[dict[str, Any]]) -> str | None:
    """The API's complaint about the first property it does not know in a message, or None
    (e.g. ``reasoning_content`` a chat client kept in an assistant message of the history)."""
    for index, message in enumerate(messages):
        for name in message:
            if name not in MESSAGE_FIELDS[message["role"]]:
                return f"messages.{index}.{message['role']}.{name}: Extra inputs are not permitted"
    return None


def tool_call(body: dict[str, Any]) -> dict[str, Any] | None:
    """A call of the first offered tool, unless tool_choice is "none"."""
    tools = body.get("tools") or []
    if not tools or body.get("tool_choice") == "none":
        return None
    function = (tools[0] or {}).get("function") or {}
    properties = list(((function.get("parameters") or {}).get("properties") or {}).keys())
    prompt = next(
        (m.get("content") for m in reversed(body["messages"]) if m.get("role") == "user"), ""
    )
    arguments = {properties[0]: prompt if isinstance(prompt, str) else ""} if properties else {}
    return {
        "id": "call_" + secrets.token_hex(6),
        "type": "function",
        "function": {"name": function.get("name", "tool"), "arguments": json.dumps(arguments)},
    }
