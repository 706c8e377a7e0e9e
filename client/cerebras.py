"""Cerebras: the inference demo's session gives a demo key for the OpenAI-compatible API."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any, ClassVar
from urllib.parse import urljoin

from .credentials import Credentials
from .errors import (
    AuthError,
    ClientError,
    MissingCredentials,
    ProtocolError,
)
from .events import Event
from .parsers.models import cerebras_models
from .parsers.openai import OpenAIStreamParser
from .provider import Call, Provider
from .transport import Request, fetch_headers

__all__ = ["Cerebras"]

# Request fields passed through to the API when given as keywords.
API_FIELDS = (
    "temperature", "top_p", "seed", "stop", "response_format", "tools", "tool_choice",
    "parallel_tool_calls", "reasoning_effort", "reasoning_format", "user", "service_tier",
)  # fmt: skip
SDK_HEADERS = {
    "x-stainless-lang": "js",
    "x-stainless-package-version": "1.5.0",
    "x-stainless-runtime": "browser:chrome",
}


class Cerebras(Provider):
    """Cerebras inference through the demo key of a signed-in inference.cerebras.ai session."""

    label = "Cerebras Inference"
    url = "https://inference.cerebras.ai/"
    login_url = "https://cloud.cerebras.ai"
    api_base = "https://api.cerebras.ai/v1"
    working = True
    default_model = "llama-3.3-70b"
    models: ClassVar[list[str]] = [
        "llama3.1-8b",
        "llama-3.3-70b",
        "gpt-oss-120b",
        "qwen-3-235b-a22b-instruct-2507",
        "zai-glm-4.7",
    ]
    model_aliases: ClassVar[dict[str, str]] = {
        "llama-3.1-8b": "llama3.1-8b",
        "llama3.1-70b": "llama-3.3-70b",  # retired by Cerebras; its successor
        "llama-3.1-70b": "llama-3.3-70b",
        "gpt-oss": "gpt-oss-120b",
        "qwen-3-235b": "qwen-3-235b-a22b-instruct-2507",
        "glm-4.7": "zai-glm-4.7",
    }
    site = "cerebras"
    models_endpoint = "api_base"
    url_attributes = ("url", "login_url", "api_base")
    login_hint = (
        "Run `harvestkit login cerebras` once to sign in (or import the browser's cookies with "
        "`harvestkit cache import cerebras cookies.txt`), then `harvestkit harvest cerebras`."
    )

    # -- credentials: cache or harvest, then the demo key from the session ---------------------
    @classmethod
    async def _credentials(cls, call: Call) -> Credentials:
        credentials = await call.auth.load()
        if credentials is None:
            if not call.auth.may_harvest:
                raise call.auth.missing("nothing cached and harvesting is disabled")
            credentials = await call.auth.harvest()
        if credentials.api_key:
            return credentials
        if credentials.source == "explicit" and not credentials.cookies:
            raise call.auth.missing("no api_key and no cookies were given")
        return await cls._with_fresh_key(call, credentials)

    @classmethod
    async def _with_fresh_key(cls, call: Call, credentials: Credentials) -> Credentials:
        key = await cls._session_key(call, credentials)
        if key is None:
            raise call.auth.missing("the session is signed out")
        credentials.api_key = key
        return await call.auth.remember(credentials, api_key=key)

    @classmethod
    async def _session_key(cls, call: Call, credentials: Credentials) -> str | None:
        """The demo key ``GET /api/auth/session`` gives for the session's cookies (None: signed out)."""
        url = urljoin(call.urls["url"], "/api/auth/session")
        request = call.request(credentials, "GET", url, {"Accept": "application/json", **fetch_headers()})
        body = await cls._read(call, credentials, request)
        try:
            data = json.loads(body or b"null")
        except ValueError:
            raise ProtocolError("the session answer is not JSON", provider=cls.site) from None
        user = data.get("user") if isinstance(data, dict) else None
        key = user.get("demoApiKey") if isinstance(user, dict) else None
        return key if isinstance(key, str) and key else None

    @classmethod
    def _recoverable(cls, error: ClientError, credentials: Credentials) -> bool:
        explicit_key_only = credentials.source == "explicit" and not credentials.cookies
        return isinstance(error, AuthError) and error.status_code in (401, 403) and not explicit_key_only

    @classmethod
    async def _recover(cls, call: Call, credentials: Credentials, error: ClientError) -> Credentials:
        """A fresh key: from the session first, then from a new harvest."""
        stale_key = credentials.api_key
        try:
            key = await cls._session_key(call, credentials)
        except ClientError:
            key = None
        if key and key != stale_key:
            credentials.api_key = key
            return await call.auth.remember(credentials, api_key=key)
        if not call.auth.may_harvest:
            raise error
        fresh = await call.auth.harvest(credentials)
        if fresh.api_key and fresh.api_key != stale_key:
            return fresh
        try:
            return await cls._with_fresh_key(call, fresh)
        except MissingCredentials:
            raise error from None

    # -- requests -----------------------------------------------------------------------------
    @classmethod
    def _api_request(cls, call: Call, credentials: Credentials, method: str, path: str, body: Any = None) -> Request:
        """A request to the API: the demo key, no cookies, the headers of the browser's SDK."""
        origin = call.urls["url"].rstrip("/")
        headers: dict[str, str | None] = {
            "Authorization": f"Bearer {credentials.api_key}",
            "Accept": "text/event-stream" if body is not None else "application/json",
            "Origin": origin,
            "Referer": origin + "/",
            **SDK_HEADERS,
            **fetch_headers("same-site"),
        }
        return call.request(credentials, method, call.urls["api_base"].rstrip("/") + path, headers, body, cookies=False)

    @classmethod
    async def _fetch_models(cls, call: Call, credentials: Credentials) -> list[str]:
        if not credentials.api_key:
            raise MissingCredentials("listing models needs the demo key", provider=cls.site)
        return cerebras_models(await cls._read(call, credentials, cls._api_request(call, credentials, "GET", "/models")), cls.site)

    @classmethod
    async def _events(
        cls, call: Call, credentials: Credentials, model: str, messages: list[dict[str, Any]]
    ) -> AsyncGenerator[Event, None]:
        body: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if call.params.get("max_tokens") is not None:
            body["max_completion_tokens"] = call.params["max_tokens"]
        body.update({name: call.params[name] for name in API_FIELDS if call.params.get(name) is not None})
        response = await cls._send(call, credentials, cls._api_request(call, credentials, "POST", "/chat/completions", body))
        try:
            async for event in call.events(response, OpenAIStreamParser(cls.site)):
                yield event
        finally:
            await response.aclose()
