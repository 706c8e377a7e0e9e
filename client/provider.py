"""What every provider shares: the seeds' public shape, model lists, retries and recovery.

A provider class describes a service (its URL attributes, models, aliases) and implements four
hooks: ``_credentials`` (what a call presents), ``_events`` (one attempt: request, check,
parse), ``_recover`` (one fresh set of credentials after an auth failure) and
``_fetch_models``. Everything else, the path of one call, is here:

credentials -> model check -> attempt -> (retry with backoff | recover once) -> events
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .credentials import Credentials, SiteAuth
from .errors import (
    ClientError,
    ConnectError,
    ModelNotFound,
    StreamBroken,
    StreamTimeout,
    Timeout,
)
from .events import Event
from .parsers._common import StreamParser
from .responses import error_from_response
from .retry import RetryPolicy
from .settings import Settings
from .stream import ChatResult, ChatStream
from .sync import run_sync
from .transport import Request, Response, Transport

__all__ = ["Call", "Messages", "Provider"]

Messages = Sequence[Mapping[str, Any]]


@dataclass
class Call:
    """Everything one call needs, resolved from the class attributes and the keywords."""

    settings: Settings
    urls: dict[str, str]
    auth: SiteAuth
    params: dict[str, Any] = field(default_factory=dict)
    deadline: float | None = None

    @property
    def retry(self) -> RetryPolicy:
        s = self.settings
        return RetryPolicy(s.max_retries, s.backoff_base, s.backoff_cap, s.max_retry_wait)

    def idle(self) -> float:
        """How long the next read may wait: the idle timeout, bounded by the total deadline."""
        idle = self.settings.idle_timeout
        if self.deadline is None:
            return idle
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Timeout(f"the request took longer than its total timeout ({self.settings.total_timeout:g} s)")
        return min(idle, left)

    def request(
        self,
        credentials: Credentials,
        method: str,
        url: str,
        headers: dict[str, str | None],
        body: Any = None,
        *,
        cookies: bool = True,
    ) -> Request:
        """A request presenting ``credentials`` (their cookies for ``url`` unless ``cookies`` is
        false), through their proxy, with this call's CA and timeouts."""
        jar = credentials.cookie_jar(url.replace("wss://", "https://", 1)) if cookies else {}
        return Request(
            method,
            url,
            credentials.identity,
            headers=headers,
            cookies=jar,
            json=body,
            proxy=credentials.proxy,
            ca_bundle=self.settings.ca_bundle,
            connect_timeout=self.settings.connect_timeout,
            idle_timeout=self.settings.idle_timeout,
            max_connections=self.settings.max_connections,
        )

    async def events(self, response: Response, parser: StreamParser) -> AsyncGenerator[Event, None]:
        """The events of a streamed body. A silence beyond the idle timeout raises
        :class:`StreamTimeout` with the text so far; a transfer that breaks mid-way ends the
        stream if the parser saw it complete, else raises :class:`StreamBroken`."""
        received = False
        cause: ClientError | None = None  # the transfer broke: the parser says if it was complete
        while True:
            wait = self.idle()
            try:
                data = await response.next_chunk(wait)
            except TimeoutError:
                raise StreamTimeout(
                    f"no data for {wait:g} s", text=parser.text_so_far, provider=response.provider
                ) from None
            except (ConnectError, Timeout) as error:
                if not received:
                    raise
                cause = error
                break
            if data is None:
                break
            received = True
            for event in parser.feed(data):
                yield event
        try:
            for event in parser.finish():  # the last events reach the caller before the error
                yield event
        except StreamBroken as broken:
            if cause is None:
                raise
            broken.cause = cause
            raise broken from cause


def as_messages(messages: Messages | str, system: str | None = None) -> list[dict[str, Any]]:
    """A prompt string or a message list as a message list, with ``system`` put first."""
    listed = [{"role": "user", "content": messages}] if isinstance(messages, str) else [dict(m) for m in messages]
    if system is not None:
        listed = [{"role": "system", "content": system}, *[m for m in listed if m.get("role") != "system"]]
    return listed


class Provider:
    """Base of the providers; all public methods are classmethods, as in the seeds."""

    label: ClassVar[str] = ""
    url: ClassVar[str] = ""
    working: ClassVar[bool] = True
    default_model: ClassVar[str] = ""
    models: ClassVar[list[str]] = []
    model_aliases: ClassVar[dict[str, str]] = {}
    supports_stream: ClassVar[bool] = True
    supports_system_message: ClassVar[bool] = True
    supports_message_history: ClassVar[bool] = True

    site: ClassVar[str] = ""  # the auth cache's site name
    url_attributes: ClassVar[tuple[str, ...]] = ("url",)
    login_hint: ClassVar[str] = ""
    settings: ClassVar[Settings | None] = None  # None: Settings.from_env() at every call
    _transport: ClassVar[Transport]
    models_endpoint: ClassVar[str] = "url"  # the URL attribute the live model list comes from
    _live_models: ClassVar[dict[str, tuple[float, list[str]]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._transport = Transport(cls.site or cls.__name__.lower())
        cls._live_models = {}

    # -- the seeds' surface -------------------------------------------------------------------
    @classmethod
    def get_model(cls, model: str | None) -> str:
        """The model id for ``model``: the default when empty, aliases resolved."""
        if not model:
            return cls.default_model
        return cls.model_aliases.get(model, model)

    @classmethod
    def create_async_generator(
        cls,
        model: str | None,
        messages: Messages | str,
        api_key: str | None = None,
        cookies: dict[str, str] | None = None,
        proxy: str | None = None,
        max_tokens: int | None = None,
        **kwargs: Any,
    ) -> AsyncGenerator[Event, None]:
        """Stream an answer: ``str`` text chunks, then ``Reasoning``/``ToolCalls`` as they come,
        ``Usage`` and ``FinishReason``. Keywords: any URL attribute, any ``Settings`` field,
        ``system``, ``temperature``, ``top_p``, ``stop``, ``seed``, ``tools``, ``tool_choice``..."""
        call = cls._call(api_key, cookies, proxy, kwargs)
        if max_tokens is not None:
            call.params["max_tokens"] = max_tokens
        system = call.params.pop("system", None)
        return cls._run(call, cls.get_model(model), as_messages(messages, system))

    @classmethod
    def stream(cls, messages: Messages | str, model: str | None = None, **kwargs: Any) -> ChatStream:
        """The answer as a :class:`ChatStream` (``async with ... as stream: async for ...``)."""
        resolved = cls.get_model(model)
        return ChatStream(
            cls.create_async_generator(resolved, messages, **kwargs), provider=cls.site, model=resolved
        )

    @classmethod
    async def chat(cls, messages: Messages | str, model: str | None = None, **kwargs: Any) -> ChatResult:
        """The whole answer, with usage and finish reason."""
        async with cls.stream(messages, model, **kwargs) as stream:
            return await stream.collect()

    @classmethod
    def chat_sync(cls, messages: Messages | str, model: str | None = None, **kwargs: Any) -> ChatResult:
        """:meth:`chat` for synchronous code (also inside a running event loop)."""
        return run_sync(lambda: cls.chat(messages, model, **kwargs))

    @classmethod
    async def get_models_async(cls, **kwargs: Any) -> list[str]:
        """The live model list (kept for ``models_ttl``); the built-in list when unavailable.

        Uses only credentials that exist (explicit or cached): listing models never harvests."""
        kwargs.setdefault("allow_harvest", False)
        call = cls._call(kwargs.pop("api_key", None), kwargs.pop("cookies", None), kwargs.pop("proxy", None), kwargs)
        live = await cls._models(call)
        return live if live is not None else list(cls.models)

    @classmethod
    def get_models(cls, **kwargs: Any) -> list[str]:
        """:meth:`get_models_async` for synchronous code (also inside a running event loop)."""
        return run_sync(lambda: cls.get_models_async(**kwargs))

    @classmethod
    async def aclose(cls) -> None:
        """Close this provider's connections on the running loop."""
        await cls._transport.aclose()

    # -- the path of one call ---------------------------------------------------------------------
    @classmethod
    def _call(
        cls, api_key: str | None, cookies: dict[str, str] | None, proxy: str | None, kwargs: dict[str, Any]
    ) -> Call:
        settings = (cls.settings or Settings.from_env()).with_overrides(kwargs)
        urls = {name: str(kwargs.pop(name, None) or getattr(cls, name)) for name in cls.url_attributes}
        auth = SiteAuth(cls.site, settings, api_key=api_key, cookies=cookies, proxy=proxy, login_hint=cls.login_hint)
        deadline = None if settings.total_timeout is None else time.monotonic() + settings.total_timeout
        return Call(settings, urls, auth, kwargs, deadline)

    @classmethod
    async def _run(cls, call: Call, model: str, messages: list[dict[str, Any]]) -> AsyncGenerator[Event, None]:
        credentials = await cls._credentials(call)
        live = await cls._models(call, credentials)
        if live is not None and model not in live:
            raise ModelNotFound(
                f"model {model!r} is not in the live list; live models: {', '.join(sorted(live)[:20])}",
                provider=cls.site,
            )
        retry, attempt, recovered = call.retry, 0, False
        while True:
            received: list[str] = []
            yielded = False
            try:
                async with contextlib.aclosing(cls._events(call, credentials, model, messages)) as events:
                    async for event in events:
                        yielded = True
                        if isinstance(event, str):
                            received.append(event)
                        yield event
                return
            except ClientError as error:
                if yielded:
                    raise cls._broken(error, "".join(received)) from error
                if not recovered and cls._recoverable(error, credentials):
                    recovered = True
                    credentials = await cls._recover(call, credentials, error)
                    continue
                attempt += 1
                delay = retry.delay(attempt, error)
                if delay is None:
                    raise
                if call.deadline is not None and time.monotonic() + delay > call.deadline:
                    raise
                await asyncio.sleep(delay)

    @staticmethod
    def _broken(error: ClientError, text: str) -> StreamBroken:
        """A failure after the first chunk, as :class:`StreamBroken` carrying the text so far."""
        if isinstance(error, StreamBroken):
            return error
        return StreamBroken(
            f"the stream failed mid-way: {error.message}",
            text=text,
            cause=error,
            status_code=error.status_code,
            code=error.code,
            provider=error.provider,
        )

    @classmethod
    async def _models(cls, call: Call, credentials: Credentials | None = None) -> list[str] | None:
        """The live model list, cached for ``models_ttl``; None when it cannot be had."""
        endpoint = call.urls[cls.models_endpoint]
        cached = cls._live_models.get(endpoint)
        if cached is not None and time.monotonic() - cached[0] < call.settings.models_ttl:
            return cached[1]
        try:
            if credentials is None:
                credentials = await call.auth.load() or call.auth.default()
            live = await cls._fetch_models(call, credentials)
        except ClientError:
            return None
        if live:
            cls._live_models[endpoint] = (time.monotonic(), live)
        return live or None

    @classmethod
    async def _send(cls, call: Call, credentials: Credentials, request: Request) -> Response:
        """Send; merge the cookies the response sets; raise an error status as the error tree's
        class (its body read first)."""
        response = await cls._transport.send(request)
        try:
            await call.auth.merge_set_cookies(credentials, request.url, response.set_cookies)
            if response.status < 400:
                return response
            body = await response.read(timeout=call.idle())
        except BaseException:
            await response.aclose()
            raise
        await response.aclose()
        raise error_from_response(response.status, response.headers, body, cls.site)

    @classmethod
    async def _read(cls, call: Call, credentials: Credentials, request: Request) -> bytes:
        """The whole body of a successful response to ``request``."""
        response = await cls._send(call, credentials, request)
        try:
            return await response.read(timeout=call.idle())
        finally:
            await response.aclose()

    # -- hooks ---------------------------------------------------------------------------------
    @classmethod
    async def _credentials(cls, call: Call) -> Credentials:
        raise NotImplementedError

    @classmethod
    def _events(
        cls, call: Call, credentials: Credentials, model: str, messages: list[dict[str, Any]]
    ) -> AsyncGenerator[Event, None]:
        raise NotImplementedError

    @classmethod
    def _recoverable(cls, error: ClientError, credentials: Credentials) -> bool:
        raise NotImplementedError

    @classmethod
    async def _recover(cls, call: Call, credentials: Credentials, error: ClientError) -> Credentials:
        raise NotImplementedError

    @classmethod
    async def _fetch_models(cls, call: Call, credentials: Credentials) -> list[str]:
        raise NotImplementedError
