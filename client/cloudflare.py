"""Cloudflare Workers AI playground: a challenge-cleared session, every protocol generation.

Generations (spec 2.3-2.6): the agents WebSocket (current), and ``POST /api/inference``
answered as an AI SDK data stream, a UI message stream or the oldest Workers SSE (told apart
by the response headers). ``transport="auto"`` starts with the generation that last worked
for the cached session and falls back in order when an endpoint answers 404. Options a
generation cannot carry skip it under ``auto`` and are refused with ``BadRequest`` before
anything is sent when no generation left can carry them.

:class:`CloudflareSite` is the site adapter; :class:`Cloudflare` the seeds' facade.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, Awaitable
from typing import Any, ClassVar

from .agents_socket import agent_chat, agent_models, agent_url, rejoin_url
from .base_transport import HTTPResponse, Request, WebSocketConnection, fetch_headers
from .call import Call
from .credentials import Credentials
from .errors import (
    AuthError,
    BadRequest,
    ChallengeError,
    ClientError,
    MissingCredentials,
)
from .events import Event
from .options import ChatOptions
from .parsers._common import StreamParser
from .parsers.agents import ui_messages
from .parsers.datastream import DataStreamParser
from .parsers.models import cloudflare_models
from .parsers.uistream import UIStreamParser
from .parsers.workers import WorkersParser
from .provider import Provider
from .site import Site

__all__ = ["GENERATIONS", "Cloudflare", "CloudflareSite"]

GENERATIONS = ("agents", "data-stream", "ui-stream", "sse")
PARSERS: dict[str, type[StreamParser]] = {
    "data-stream": DataStreamParser,
    "ui-stream": UIStreamParser,
    "sse": WorkersParser,
}


# What each generation's request can carry (spec 2.3-2.6): the agent's state has a temperature,
# the HTTP bodies max_tokens and tools. Nothing carries the other options. ``user`` names the end
# user (OpenAI's field, which chat front ends send with every request): it changes no answer, is
# not sent, and keeps a pool's conversation on its session.
CARRIES: dict[str, frozenset[str]] = {
    "agents": frozenset(("temperature",)),
    "http": frozenset(("max_tokens", "tools")),
}
NEVER = ("top_p", "stop", "seed", "tool_choice", "parallel_tool_calls", "response_format",
         "reasoning_effort", "reasoning_format", "service_tier", "extra_body")  # fmt: skip


def refused(options: ChatOptions, generation: str) -> list[str]:
    """The options that are set and that ``generation`` cannot carry."""
    carried = CARRIES["agents" if generation == "agents" else "http"]
    return [name for name in ("temperature", "max_tokens", "tools") if name not in carried
            and getattr(options, name) not in (None, [])]  # fmt: skip


def http_generation(response: HTTPResponse) -> str:
    """Which HTTP generation answered, from its headers."""
    if "x-vercel-ai-ui-message-stream" in response.headers:
        return "ui-stream"
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return "sse"
    return "data-stream"


class CloudflareSite(Site):
    """The Workers AI LLM playground, through a session that passed Cloudflare's challenge."""

    name = "cloudflare"
    # The agents generation's default (spec 4.2) first, then the other ids it offers, then the
    # models of the HTTP generations (still served by Workers AI).
    default_model = "@cf/moonshotai/kimi-k2.6"
    models: ClassVar[list[str]] = [
        "@cf/moonshotai/kimi-k2.6",
        "@cf/zai-org/glm-5.2",
        "@cf/google/gemma-4-26b-a4b-it",
        "@cf/openai/gpt-oss-120b",
        "@cf/meta/llama-3.3-70b-instruct-fp8-fast",
        "@cf/meta/llama-3.1-8b-instruct-fast",
        "@cf/meta/llama-4-scout-17b-16e-instruct",
        "@cf/qwen/qwq-32b",
        "@cf/deepseek-ai/deepseek-r1-distill-qwen-32b",
        "@cf/mistralai/mistral-small-3.1-24b-instruct",
        "@cf/google/gemma-3-12b-it",
    ]
    model_aliases: ClassVar[dict[str, str]] = {
        "kimi-k2.6": "@cf/moonshotai/kimi-k2.6",
        "glm-5.2": "@cf/zai-org/glm-5.2",
        "gemma-4-26b": "@cf/google/gemma-4-26b-a4b-it",
        "gpt-oss-120b": "@cf/openai/gpt-oss-120b",
        "llama-3.3-70b": "@cf/meta/llama-3.3-70b-instruct-fp8-fast",
        "llama-3.1-8b": "@cf/meta/llama-3.1-8b-instruct-fast",
        "llama-4-scout": "@cf/meta/llama-4-scout-17b-16e-instruct",
        "qwq-32b": "@cf/qwen/qwq-32b",
        "deepseek-r1-qwen-32b": "@cf/deepseek-ai/deepseek-r1-distill-qwen-32b",
        "mistral-small-3.1-24b": "@cf/mistralai/mistral-small-3.1-24b-instruct",
        "gemma-3-12b": "@cf/google/gemma-3-12b-it",
    }
    url_names = ("url", "api_endpoint", "models_url")
    default_urls: ClassVar[dict[str, str]] = {
        "url": "https://playground.ai.cloudflare.com/",
        "api_endpoint": "https://playground.ai.cloudflare.com/api/inference",
        "models_url": "https://playground.ai.cloudflare.com/api/models",
    }
    models_endpoint = "models_url"

    def check(self, call: Call, messages: list[dict[str, Any]]) -> None:
        super().check(call, messages)
        if call.generation != "auto" and call.generation not in GENERATIONS:
            raise BadRequest(f"transport must be 'auto' or one of {', '.join(GENERATIONS)}, not {call.generation!r}",
                             param="transport", provider=self.name)  # fmt: skip
        for name in NEVER:
            if getattr(call.options, name) is not None:
                raise BadRequest(f"{name} is not supported by the Cloudflare playground", param=name, provider=self.name)
        if call.generation != "auto" and (names := refused(call.options, call.generation)):
            raise BadRequest(f"{names[0]} is not supported by the {call.generation} generation of the playground",
                             param=names[0], provider=self.name)  # fmt: skip
        if call.generation == "auto" and refused(call.options, "agents") and refused(call.options, "http"):
            raise BadRequest("temperature cannot be combined with max_tokens or tools: no generation of the "
                             "playground carries both", param="temperature", provider=self.name)  # fmt: skip

    # -- credentials ----------------------------------------------------------------------------
    async def credentials(self, call: Call) -> Credentials:
        credentials = await call.auth.load()
        if credentials is not None:
            return credentials
        if call.auth.may_harvest:
            try:
                return await call.auth.harvest()
            except MissingCredentials:  # no browser: try once as the seed did, without a session
                pass
        return call.auth.default()

    def recoverable(self, error: ClientError, credentials: Credentials) -> bool:
        return isinstance(error, (ChallengeError, AuthError)) and error.status_code in (401, 403)

    async def recover(self, call: Call, credentials: Credentials, error: ClientError) -> Credentials:
        """One single-flight re-harvest; without one, say what to do."""
        if not call.auth.may_harvest:
            raise call.auth.missing(f"the playground refused the session ({error.message})") from error
        try:
            return await call.auth.harvest(credentials if credentials.source == "cache" else None)
        except MissingCredentials as missing:
            raise missing from error

    # -- requests -------------------------------------------------------------------------------
    def _request(self, call: Call, credentials: Credentials, method: str, url: str, body: Any = None) -> Request:
        """A request as the playground page's script makes it, with the session's cookies."""
        origin = call.urls["url"].rstrip("/")
        mode = "websocket" if url.startswith("wss://") else "cors"
        headers = {"Origin": origin, "Referer": origin + "/", "Accept": "*/*", **fetch_headers(mode=mode)}
        return call.request(credentials, method, url, headers, body)

    def _order(self, call: Call, credentials: Credentials) -> list[str]:
        """The generations to try: the one asked for, else the remembered one first (of those
        that can carry the options)."""
        if call.generation != "auto":
            return [call.generation]
        # Without a remembered generation HTTP goes first: its 404 still sets cookies the client
        # can read, where a refused socket upgrade leaves none.
        remembered = credentials.record.generation if credentials.record else None
        order = ["agents", "http"] if remembered == "agents" else ["http", "agents"]
        return [generation for generation in order if not refused(call.options, generation)]

    async def events(
        self, call: Call, credentials: Credentials, model: str, messages: list[dict[str, Any]]
    ) -> AsyncGenerator[list[Event], None]:
        order = self._order(call, credentials)
        key = _unlearned(call, credentials, order)
        finding = None  # (key, future) while this chat finds out, for the others, which generation answers
        if key is not None:
            if (pending := _FINDING.get(key)) is None:
                finding = key, _FINDING.setdefault(key, asyncio.get_running_loop().create_future())
            elif (learned := await asyncio.shield(pending)) is not None:  # another chat found out
                first = "agents" if learned == "agents" else "http"
                order.sort(key=lambda generation: generation != first)
        try:
            for index, generation in enumerate(order):
                try:
                    if generation == "agents":
                        url = agent_url(call.urls["url"])
                        ws = await call.websocket(credentials, self._request(call, credentials, "GET", url))
                        temperature = call.options.temperature

                        def reconnect(url: str = url) -> Awaitable[WebSocketConnection]:  # the same agent, for a resume
                            return call.websocket(credentials, self._request(call, credentials, "GET", rejoin_url(url)))

                        events = agent_chat(ws, model, messages, call.idle, temperature=1 if temperature is None else temperature,
                                            reconnect=reconnect)  # fmt: skip
                        used = "agents"
                    else:
                        response = await call.send(credentials, self._inference(call, credentials, model, messages))
                        used = generation if generation in PARSERS else http_generation(response)
                        events = self._parsed(call, response, PARSERS[used])
                except ClientError as error:
                    if error.status_code == 404 and index + 1 < len(order):
                        continue
                    raise
                if finding is not None:
                    _settle(*finding, used)
                await self._remember(call, credentials, used)
                async for batch in events:
                    yield batch
                return
        finally:
            if finding is not None:  # no generation answered this chat: the others try for themselves
                _settle(*finding, None)

    async def _parsed(self, call: Call, response: HTTPResponse, parser: type[StreamParser]) -> AsyncGenerator[list[Event], None]:
        try:
            async for batch in call.events(response, parser(self.name)):
                yield batch
        finally:
            await response.aclose()

    def _inference(self, call: Call, credentials: Credentials, model: str, messages: list[dict[str, Any]]) -> Request:
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
            "max_tokens": call.options.max_tokens or 2048,
            "stream": True,
            "system_message": system or "You are a helpful assistant",
            "tools": call.options.tools or [],
            "trigger": "submit-message",
        }
        return self._request(call, credentials, "POST", call.urls["api_endpoint"], body)

    async def _remember(self, call: Call, credentials: Credentials, generation: str) -> None:
        record = credentials.record
        if record is not None and record.generation != generation:
            await call.auth.remember(credentials, generation=generation)

    # -- models ---------------------------------------------------------------------------------
    async def fetch_models(self, call: Call, credentials: Credentials) -> list[str]:
        try:
            body = await call.read(credentials, self._request(call, credentials, "GET", call.urls["models_url"]))
        except ClientError as error:
            if error.status_code != 404:
                raise
            ws = await call.websocket(credentials, self._request(call, credentials, "GET", agent_url(call.urls["url"])))
            return cloudflare_models(await agent_models(ws, call.idle), self.name)
        return cloudflare_models(body, self.name)


_FINDING: dict[tuple[Any, ...], asyncio.Future[str | None]] = {}
"""Per event loop and cached session that no chat has used yet: the first chat's finding of the
generation that answers. Concurrent chats on a new session wait for it instead of each
sending the HTTP request that a site on the agents generation refuses with 404."""


def _unlearned(call: Call, credentials: Credentials, order: list[str]) -> tuple[Any, ...] | None:
    """The key of a cached session whose generation ``auto`` has yet to find out, else None."""
    record = credentials.record
    if call.generation != "auto" or len(order) < 2 or record is None or record.generation is not None:
        return None
    return asyncio.get_running_loop(), call.site, record.profile, record.harvested_at


def _settle(key: tuple[Any, ...], finding: asyncio.Future[str | None], generation: str | None) -> None:
    """Tell the waiting chats what answered (None: nothing did, they try for themselves)."""
    if not finding.done():
        finding.set_result(generation)
    if _FINDING.get(key) is finding:
        del _FINDING[key]


class Cloudflare(Provider):
    """The seeds' ``Cloudflare`` provider: class attributes and classmethods over the default client."""

    site_class = CloudflareSite
    label = "Cloudflare AI"
    url = CloudflareSite.default_urls["url"]
    api_endpoint = CloudflareSite.default_urls["api_endpoint"]
    models_url = CloudflareSite.default_urls["models_url"]
    working = True
    default_model = CloudflareSite.default_model
    models = CloudflareSite.models
    model_aliases = CloudflareSite.model_aliases
    site = CloudflareSite.name
    url_attributes = CloudflareSite.url_names
