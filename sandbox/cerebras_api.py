"""api.cerebras.ai: the OpenAI-compatible API, streamed the way Cerebras streams (spec 1.2)."""
from __future__ import annotations

import json
import random
import secrets
import time
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from . import keys
from . import cerebras_strict as strict
from .accounts import Accounts
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
                "x-ratelimit-remaining-tokens-minute": str(
                    max(TOKENS_PER_MINUTE - (used if minute == int(now // 60) else 0), 0)
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


_MARK = "\u0000content\u0000"
_IDS = "\u0000tokens\u0000"
_encode_string = json.encoder.encode_basestring_ascii  # what json.dumps does to a str
ENVELOPES = ("identical", "varying")
_VARIANTS = 61  # envelopes a varying stream cycles through (a prime: no period lines up with one)
_PAD = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class Completion:
    """One answer, as Cerebras shapes it whole or as stream chunks.

    ``envelope="varying"`` (spec 4.1: never assume two chunks share an envelope) gives every
    chunk its own: random ``obfuscation`` padding, ``tokens`` ids beside the content, keys in
    another order, ``system_fingerprint``, ``service_tier`` and ``logprobs`` present or absent.
    ``"identical"`` repeats one envelope byte for byte.  ``usage_chunk`` sends the usage and
    ``time_info`` in a chunk of their own with ``choices: []`` after the finish chunk.
    ``fragmented`` sends a tool call in pieces keyed by index."""

    def __init__(
        self,
        model: str,
        reply: Reply,
        call: dict[str, Any] | None,
        *,
        envelope: str = "varying",
        usage_chunk: bool = False,
        fragmented: bool = False,
    ) -> None:
        self.id = "chatcmpl-" + secrets.token_hex(12)
        self.fragmented = fragmented  # the tool call in pieces keyed by index
        self.created = int(time.time())
        self.model, self.reply, self.call = model, reply, call
        self.started = time.time()
        self.varying = envelope == "varying"
        self.usage_chunk = usage_chunk
        self._rng = random.Random(self.id)

    def usage(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.reply.prompt_tokens,
            "completion_tokens": self.reply.completion_tokens,
            "total_tokens": self.reply.prompt_tokens + self.reply.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
        }

    def time_info(self) -> dict[str, float]:
        total = max(time.time() - self.started, 1e-4)
        return {
            "queue_time": 0.0001,
            "prompt_time": round(total * 0.2, 6),
            "completion_time": round(total * 0.8, 6),
            "total_time": round(total, 6),
            "created": self.started,
        }

    def finish_reason(self) -> str:
        return "tool_calls" if self.call else self.reply.finish_reason

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        chunk = {
            "id": self.id,
            "choices": [{"delta": delta, "finish_reason": finish, "index": 0}],
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_sandbox",
            "object": "chat.completion.chunk",
        }
        return self._vary(chunk) if self.varying else chunk

    def _vary(self, chunk: dict[str, Any]) -> dict[str, Any]:
        """``chunk`` with this chunk's padding, optional fields and key order."""
        rng = self._rng
        choice = chunk["choices"][0]
        if rng.random() < 0.5:
            choice["logprobs"] = None
        if rng.random() < 0.3:
            del chunk["system_fingerprint"]
        if rng.random() < 0.3:
            chunk["service_tier"] = "default"
        chunk["obfuscation"] = "".join(rng.choices(_PAD, k=rng.randrange(1, 24)))
        for part in (chunk, choice):
            items = list(part.items())
            rng.shuffle(items)
            part.clear()
            part.update(items)
        return chunk

    def _opening(self) -> Iterator[dict[str, Any]]:
        yield self._chunk({"role": "assistant"})
        for thought in self.reply.reasoning:
            yield self._chunk({"reasoning": thought})
        if self.call and self.fragmented:
            for delta in strict.tool_call_deltas(self.call):
                yield self._chunk(delta)
        elif self.call:
            yield self._chunk({"tool_calls": [dict(self.call, index=0)]})

    def _closing(self) -> Iterator[dict[str, Any]]:
        yield self._chunk({})
        last = self._chunk({}, self.finish_reason())
        if not self.usage_chunk:
            last["usage"], last["time_info"] = self.usage(), self.time_info()
            yield last
            return
        yield last
        tail = self._chunk({})
        tail["choices"] = []
        tail["usage"], tail["time_info"] = self.usage(), self.time_info()
        yield tail

    def _tokens(self) -> list[str]:
        return [] if self.call else self.reply.tokens

    def chunks(self) -> Iterator[dict[str, Any]]:
        yield from self._opening()
        ids: dict[str, int] = {}
        for token in self._tokens():
            delta: dict[str, Any] = {"content": token}
            if self.varying:
                delta["tokens"] = [ids.setdefault(token, 1000 + len(ids))]
            yield self._chunk(delta)
        yield from self._closing()

    def _envelopes(self) -> list[tuple[str, str, str, bool]]:
        """Pre-encoded content chunks: (before, between, after, ids first) around the content
        string and the token ids; one when identical, ``_VARIANTS`` to cycle through when not."""
        found = []
        for _ in range(_VARIANTS if self.varying else 1):
            delta: dict[str, Any] = {"content": _MARK}
            if self.varying:
                delta["tokens"] = _IDS
                if self._rng.random() < 0.5:
                    delta = {"tokens": _IDS, "content": _MARK}
            text = _compact(self._chunk(delta))
            content, ids = text.index(json.dumps(_MARK)), text.find(json.dumps(_IDS))
            if ids < 0:
                found.append((text[:content], "", text[content + len(json.dumps(_MARK)) :], False))
                continue
            first, second = sorted([(content, _MARK), (ids, _IDS)])
            a = text[: first[0]]
            b = text[first[0] + len(json.dumps(first[1])) : second[0]]
            c = text[second[0] + len(json.dumps(second[1])) :]
            found.append((a, b, c, first[1] == _IDS))
        return found

    def sse(self, batch: int = 1) -> Iterator[bytes]:
        """The stream as SSE events, byte for byte ``data: json.dumps(chunk)``.

        Content chunks are pre-encoded per envelope variant and token (no dict and no JSON
        encoding per token), so a long stream costs the server little whether its envelopes
        repeat or vary.  ``batch`` > 1 joins that many content chunks into one item (for an
        unpaced stream without faults, whose items are not counted one by one)."""
        for chunk in self._opening():
            yield b"data: " + _compact(chunk).encode() + b"\n\n"
        tables: list[dict[str, bytes]] = [{} for _ in range(_VARIANTS if self.varying else 1)]
        envelopes = self._envelopes()
        ids: dict[str, bytes] = {}  # token -> its ids array: a tokenizer's ids are fixed

        def encode(variant: int, token: str) -> bytes:
            before, between, after, ids_first = envelopes[variant]
            text, array = _encode_string(token), ids.setdefault(token, "[%d]" % (1000 + len(ids)))
            middle = (array + between + text) if ids_first else (text + between + array) if between else text
            tables[variant][token] = data = ("data: " + before + middle + after + "\n\n").encode()
            return data

        count, pending = len(tables), []
        for index, token in enumerate(self._tokens()):
            variant = index % count
            pending.append(tables[variant].get(token) or encode(variant, token))
            if len(pending) >= batch:
                yield b"".join(pending)
                pending = []
        if pending:
            yield b"".join(pending)
        for chunk in self._closing():
            yield b"data: " + _compact(chunk).encode() + b"\n\n"

    def whole(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": None if self.call else self.reply.text}
        if self.reply.reasoning:
            message["reasoning"] = "".join(self.reply.reasoning)
        if self.call:
            message["tool_calls"] = [self.call]
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_sandbox",
            "choices": [{"index": 0, "finish_reason": self.finish_reason(), "message": message}],
            "usage": self.usage(),
            "time_info": self.time_info(),
        }
