"""Cloudflare Workers AI playground: a challenge-cleared session, every protocol generation.

Generations (spec 2.3-2.6): the agents WebSocket (current), and ``POST /api/inference``
answered as an AI SDK data stream, a UI message stream or the oldest Workers SSE (told apart
by the response headers). ``transport="auto"`` starts with the generation that last worked
for the cached session and falls back in order when an endpoint answers 404.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from typing import Any, ClassVar

from .agents_socket import agent_chat, agent_models, agent_url
from .credentials import Credentials
from .errors import (
    AuthError,
    BadRequest,
    ChallengeError,
    ClientError,
    MissingCredentials,
)
from .events import Event
from .parsers._common import StreamParser
from .parsers.agents import ui_messages
from .parsers.datastream import DataStreamParser
from .parsers.models import cloudflare_models
from .parsers.uistream import UIStreamParser
from .parsers.workers import WorkersParser
from .provider import Call, Provider
from .transport import Request, Response, WebSocket, fetch_headers

__all__ = ["GENERATIONS", "Cloudflare"]

GENERATIONS = ("agents", "data-stream", "ui-stream", "sse")
PARSERS: dict[str, type[StreamParser]] = {
    "data-stream": DataStreamParser,
    "ui-stream": UIStreamParser,
    "sse": WorkersParser,
}


def http_generation(response: Response) -> str:
    """Which HTTP generation answered, from its headers."""
    if "x-vercel-ai-ui-message-stream" in response.headers:
        return "ui-stream"
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return "sse"
    return "data-stream"


class Cloudflare(Provider):
    """The Workers AI LLM playground, through a session that passed Cloudflare's challenge."""

    label = "Cloudflare AI"
    url = "https://playground.ai.cloudflare.com/"
    api_endpoint = "https://playground.ai.cloudflare.com/api/inference"
    models_url = "https://playground.ai.cloudflare.com/api/models"
    working = True
    default_model = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
    models: ClassVar[list[str]] = [
        "@cf/meta/llama-3.3-70b-instruct-fp8-fast",
        "@cf/meta/llama-3.1-8b-instruct-fast",
        "@cf/meta/llama-4-scout-17b-16e-instruct",
        "@cf/qwen/qwq-32b",
        "@cf/deepseek-ai/deepseek-r1-distill-qwen-32b",
        "@cf/mistralai/mistral-small-3.1-24b-instruct",
        "@cf/google/gemma-3-12b-it",
    ]
    model_aliases: ClassVar[dict[str, str]] = {
        "llama-3.3-70b": "@cf/meta/llama-3.3-70b-instruct-fp8-fast",
        "llama-3.1-8b": "@cf/meta/llama-3.1-8b-instruct-fast",
        "llama-4-scout": "@cf/meta/llama-4-scout-17b-16e-instruct",
        "qwq-32b": "@cf/qwen/qwq-32b",
        "deepseek-r1-qwen-32b": "@cf/deepseek-ai/deepseek-r1-distill-qwen-32b",
        "mistral-small-3.1-24b": "@cf/mistralai/mistral-small-3.1-24b-instruct",
        "gemma-3-12b": "@cf/google/gemma-3-12b-it",
    }
    site = "cloudflare"
    models_endpoint = "models_url"
    url_attributes = ("url", "api_endpoint", "models_url")

    # -- credentials ----------------------------------------------------------------------------
    @classmethod
    async def _credentials(cls, call: Call) -> Credentials:
        credentials = await call.auth.load()
        if credentials is not None:
            return credentials
        if call.auth.may_harvest:
            try:
                return await call.auth.harvest()
            except MissingCredentials:  # no browser: try once as the seed did, without a session
                pass
        return call.auth.default()

    @classmethod
    def _recoverable(cls, error: ClientError, credentials: Credentials) -> bool:
        return isinstance(error, (ChallengeError, AuthError)) and error.status_code in (401, 403)

    @classmethod
    async def _recover(cls, call: Call, credentials: Credentials, error: ClientError) -> Credentials:
        """One single-flight re-harvest; without one, say what to do."""
        if not call.auth.may_harvest:
            raise call.auth.missing(f"the playground refused the session ({error.message})") from error
        try:
            return await call.auth.harvest(credentials if credentials.source == "cache" else None)
        except MissingCredentials as missing:
            raise missing from error

    # -- requests -------------------------------------------------------------------------------
    @classmethod
    def _request(cls, call: Call, credentials: Credentials, method: str, url: str, body: Any = None) -> Request:
        """A request as the playground page's script makes it, with the session's cookies."""
        origin = call.urls["url"].rstrip("/")
        mode = "websocket" if url.startswith("wss://") else "cors"
        headers = {"Origin": origin, "Referer": origin + "/", "Accept": "*/*", **fetch_headers(mode=mode)}
        return call.request(credentials, method, url, headers, body)

    @classmethod
    async def _socket(cls, call: Call, credentials: Credentials) -> WebSocket:
        """A connected agent socket; the cookies its upgrade set are merged at once."""
        ws = await cls._transport.websocket(cls._request(call, credentials, "GET", agent_url(call.urls["url"])))
        try:
            await call.auth.merge_cookies(credentials, ws.cookies)
        except BaseException:
            await ws.aclose()
            raise
        return ws

    @classmethod
    def _order(cls, call: Call, credentials: Credentials) -> list[str]:
        """The generations to try: the one asked for, else the remembered one first."""
        chosen = str(call.params.get("transport") or "auto")
        if chosen != "auto":
            if chosen not in GENERATIONS:
                raise BadRequest(f"transport must be 'auto' or one of {', '.join(GENERATIONS)}, not {chosen!r}")
            return [chosen]
        # Without a remembered generation HTTP goes first: its 404 still sets cookies the client
        # can read, where a refused socket upgrade leaves none.
        remembered = credentials.record.extra.get("generation") if credentials.record else None
        return ["agents", "http"] if remembered == "agents" else ["http", "agents"]

    @classmethod
    async def _events(
        cls, call: Call, credentials: Credentials, model: str, messages: list[dict[str, Any]]
    ) -> AsyncGenerator[Event, None]:
        order = cls._order(call, credentials)
        for index, generation in enumerate(order):
            try:
                if generation == "agents":
                    ws = await cls._socket(call, credentials)
                    events = agent_chat(ws, model, messages, call.idle, temperature=call.params.get("temperature", 1))
                    used = "agents"
                else:
                    response = await cls._send(call, credentials, cls._inference(call, credentials, model, messages))
                    used = generation if generation in PARSERS else http_generation(response)
                    events = cls._parsed(call, response, PARSERS[used])
            except ClientError as error:
                if error.status_code == 404 and index + 1 < len(order):
                    continue
                raise
            await cls._remember(call, credentials, used)
            async for event in events:
                yield event
            return

    @classmethod
    async def _parsed(cls, call: Call, response: Response, parser: type[StreamParser]) -> AsyncGenerator[Event, None]:
        try:
            async for event in call.events(response, parser(cls.site)):
                yield event
        finally:
            await response.aclose()

    @classmethod
    def _inference(cls, call: Call, credentials: Credentials, model: str, messages: list[dict[str, Any]]) -> Request:
        """One body every HTTP generation accepts (UI messages keep ``content`` for the oldest)."""
        system = "\n\n".join(str(m.get("content") or "") for m in messages if m.get("role") == "system")
        conversation = [m for m in messages if m.get("role") != "system"]
        ui = ui_messages(conversation)
        for message, original in zip(ui, conversation):
            message["content"] = original.get("content")
        body: dict[str, Any] = {
            "id": uuid.uuid4().hex[:16],
            "messages": ui,
            "lora": None,
            "model": model,
            "max_tokens": call.params.get("max_tokens") or 2048,
            "stream": True,
            "system_message": system or "You are a helpful assistant",
            "tools": call.params.get("tools") or [],
            "trigger": "submit-message",
        }
        return cls._request(call, credentials, "POST", call.urls["api_endpoint"], body)

    @classmethod
    async def _remember(cls, call: Call, credentials: Credentials, generation: str) -> None:
        record = credentials.record
        if record is not None and record.extra.get("generation") != generation:
            await call.auth.remember(credentials, extra={"generation": generation})

    # -- models ---------------------------------------------------------------------------------
    @classmethod
    async def _fetch_models(cls, call: Call, credentials: Credentials) -> list[str]:
        try:
            body = await cls._read(call, credentials, cls._request(call, credentials, "GET", call.urls["models_url"]))
        except ClientError as error:
            if error.status_code != 404:
                raise
            ws = await cls._socket(call, credentials)
            return cloudflare_models(await agent_models(ws, call.idle), cls.site)
        return cloudflare_models(body, cls.site)
