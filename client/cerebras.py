"""Cerebras: the inference demo's session gives a demo key for the OpenAI-compatible API.

:class:`CerebrasSite` is the site adapter a :class:`~harvestkit.client.Client` uses;
:class:`Cerebras` keeps the seeds' class-level shape over the default client.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any, ClassVar
from urllib.parse import urljoin

from .base_transport import Request, fetch_headers
from .call import Call
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
from .provider import Provider
from .site import Site

__all__ = ["MESSAGE_FIELDS", "Cerebras", "CerebrasSite"]

SDK_HEADERS = {
    "x-stainless-lang": "js",
    "x-stainless-package-version": "1.5.0",
    "x-stainless-runtime": "browser:chrome",
}
# The message properties the API documents, by role (spec 4.1: any other one is a 400
# wrong_api_format, e.g. the reasoning a chat client kept in an assistant message).
MESSAGE_FIELDS: dict[str, frozenset[str]] = {
    "system": frozenset(("role", "content", "name")),
    "user": frozenset(("role", "content", "name")),
    "assistant": frozenset(("role", "content", "name", "tool_calls")),
    "tool": frozenset(("role", "content", "tool_call_id", "name")),
}


class CerebrasSite(Site):
    """Cerebras inference through the demo key of a signed-in inference.cerebras.ai session."""

    name = "cerebras"
    default_model = "gemma-4-31b"  # not a reasoning model, like the retired llama-3.3-70b
    # The 2026-08 public list (spec 4.1); llama3.1-8b, llama-3.3-70b, qwen-3-235b-a22b-instruct-2507
    # and zai-glm-4.7 are retired and answer 404, which the client maps to ModelNotFound.
    models: ClassVar[list[str]] = ["gpt-oss-120b", "gemma-4-31b"]
    model_aliases: ClassVar[dict[str, str]] = {
        "gpt-oss": "gpt-oss-120b",
        "gemma-4": "gemma-4-31b",
    }
    url_names = ("url", "login_url", "api_base")
    default_urls: ClassVar[dict[str, str]] = {
        "url": "https://inference.cerebras.ai/",
        "login_url": "https://cloud.cerebras.ai",
        "api_base": "https://api.cerebras.ai/v1",
    }
    models_endpoint = "api_base"
    login_hint = (
        "Run `harvestkit login cerebras` once to sign in (or import the browser's cookies with "
        "`harvestkit cache import cerebras cookies.txt`), then `harvestkit harvest cerebras`."
    )

    def upstream_messages(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Only the documented properties of each message (an unknown role is left to the API)."""
        kept = []
        for message in messages:
            allowed = MESSAGE_FIELDS.get(str(message.get("role")))
            kept.append(message if allowed is None else {k: v for k, v in message.items() if k in allowed})
        return kept

    # -- credentials: cache or harvest, then the demo key from the session ---------------------
    async def credentials(self, call: Call) -> Credentials:
        credentials = await call.auth.load()
        if credentials is None:
            if not call.auth.may_harvest:
                raise call.auth.missing("nothing cached and harvesting is disabled")
            credentials = await call.auth.harvest()
        if credentials.api_key:
            return credentials
        if credentials.source == "explicit" and not credentials.cookies:
            raise call.auth.missing("no api_key and no cookies were given")
        return await self._with_fresh_key(call, credentials)

    async def _with_fresh_key(self, call: Call, credentials: Credentials) -> Credentials:
        key = await self._session_key(call, credentials)
        if key is None:
            raise call.auth.missing("the session is signed out")
        credentials.api_key = key
        return await call.auth.remember(credentials, api_key=key)

    async def _session_key(self, call: Call, credentials: Credentials) -> str | None:
        """The demo key ``GET /api/auth/session`` gives for the session's cookies (None: signed out)."""
        url = urljoin(call.urls["url"], "/api/auth/session")
        request = call.request(credentials, "GET", url, {"Accept": "application/json", **fetch_headers()})
        body = await call.read(credentials, request)
        try:
            data = json.loads(body or b"null")
        except ValueError:
            raise ProtocolError("the session answer is not JSON", provider=self.name) from None
        user = data.get("user") if isinstance(data, dict) else None
        key = user.get("demoApiKey") if isinstance(user, dict) else None
        return key if isinstance(key, str) and key else None

    def recoverable(self, error: ClientError, credentials: Credentials) -> bool:
        explicit_key_only = credentials.source == "explicit" and not credentials.cookies
        return isinstance(error, AuthError) and error.status_code in (401, 403) and not explicit_key_only

    async def recover(self, call: Call, credentials: Credentials, error: ClientError) -> Credentials:
        """A fresh key: from the session first, then from a new harvest."""
        stale_key = credentials.api_key
        try:
            key = await self._session_key(call, credentials)
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
            return await self._with_fresh_key(call, fresh)
        except MissingCredentials:
            raise error from None

    # -- requests -----------------------------------------------------------------------------
    def _api_request(self, call: Call, credentials: Credentials, method: str, path: str, body: Any = None) -> Request:
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

    async def fetch_models(self, call: Call, credentials: Credentials) -> list[str]:
        if not credentials.api_key:
            raise MissingCredentials("listing models needs the demo key", provider=self.name)
        return cerebras_models(await call.read(credentials, self._api_request(call, credentials, "GET", "/models")), self.name)

    async def events(
        self, call: Call, credentials: Credentials, model: str, messages: list[dict[str, Any]]
    ) -> AsyncGenerator[list[Event], None]:
        body: dict[str, Any] = {
            "model": model,
            "messages": self.upstream_messages(messages),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        options = call.options
        if options.max_tokens is not None:
            body["max_completion_tokens"] = options.max_tokens
        body.update(options.api_fields())
        body.update(options.extra_body or {})
        response = await call.send(credentials, self._api_request(call, credentials, "POST", "/chat/completions", body))
        try:
            async for batch in call.events(response, OpenAIStreamParser(self.name)):
                yield batch
        finally:
            await response.aclose()


class Cerebras(Provider):
    """The seeds' ``Cerebras`` provider: class attributes and classmethods over the default client."""

    site_class = CerebrasSite
    label = "Cerebras Inference"
    url = CerebrasSite.default_urls["url"]
    login_url = CerebrasSite.default_urls["login_url"]
    api_base = CerebrasSite.default_urls["api_base"]
    working = True
    default_model = CerebrasSite.default_model
    models = CerebrasSite.models
    model_aliases = CerebrasSite.model_aliases
    site = CerebrasSite.name
    url_attributes = CerebrasSite.url_names
    login_hint = CerebrasSite.login_hint
