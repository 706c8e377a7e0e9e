"""The seeds' class-level surface, as a thin facade over a default client per provider class.

``Cerebras.create_async_generator(model, messages, api_key=None, cookies=None, **kwargs)``,
``stream``, ``chat``, ``chat_sync``, ``get_models``/``get_models_async`` and the class
attributes stay as the seeds have them. Each class is the state of its default client: its
``settings`` (None: ``Settings.from_env()`` at every call), its connections (``_transport``)
and its live model lists (``_live_models``). Keywords are checked as the client checks them:
any ``Settings`` field, any URL attribute, ``system``, ``transport`` (Cloudflare's generation)
and the :class:`~harvestkit.client.options.ChatOptions` fields; anything else is a
``TypeError`` naming the closest valid keyword.
"""

from __future__ import annotations

import weakref
from typing import Any, ClassVar

from .call import Call
from .client import Client, Fetches, Messages, ModelCache
from .credentials import Credentials
from .options import OPTION_NAMES, ChatOptions, split_keywords
from .settings import SETTING_NAMES, Settings
from .site import Site, as_messages
from .stream import ChatResult, ChatStream
from .sync import run_sync
from .recording_transport import RecordingTransport
from .transport import CurlTransport

__all__ = ["Messages", "Provider", "as_messages"]

CALL_NAMES = ("system", "api_key", "cookies", "transport")


class _DefaultClient(Client):
    """A provider class's default client for one call: the class's transport and model lists,
    the call's settings and URLs."""

    def __init__(self, provider: type[Provider], settings: Settings, site: Site) -> None:
        self.settings = settings
        self.transport = RecordingTransport(provider._transport)  # records only inside `--record`
        self.cache = settings.auth_cache()
        self.model_cache = ModelCache(provider._live_models, provider._model_fetches)
        self.sites = {site.name: site}
        self.closed = False
        self.provider = provider

    async def _live(self, call: Call, site: Site, credentials: Credentials | None = None) -> list[str] | None:
        return await self.provider._models(call, credentials)


class Provider:
    """Base of the seeds' provider classes; every public method is a classmethod."""

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
    site_class: ClassVar[type[Site]] = Site
    url_attributes: ClassVar[tuple[str, ...]] = ("url",)
    login_hint: ClassVar[str] = ""
    settings: ClassVar[Settings | None] = None  # None: Settings.from_env() at every call
    _transport: ClassVar[CurlTransport]
    _live_models: ClassVar[dict[str, tuple[float, list[str]]]] = {}
    _model_fetches: ClassVar[Fetches]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._transport = CurlTransport(cls.site or cls.__name__.lower())
        cls._live_models = {}
        cls._model_fetches = weakref.WeakKeyDictionary()

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
        **kwargs: Any,
    ) -> ChatStream:
        """Stream an answer: ``str`` text chunks, then ``Reasoning``/``ToolCalls`` as they come,
        ``Usage`` and ``FinishReason``. The :class:`ChatStream` is an async generator (the seeds'
        return type) whose connection is released at its end, ``aclose()`` or garbage
        collection. Keywords: any ``Settings`` field (``proxy``, ``idle_timeout``...), any URL
        attribute, ``system``, ``transport`` and the request options (``temperature``,
        ``max_tokens``, ``tools``... ``extra_body``)."""
        return cls._stream("create_async_generator", messages, model, api_key=api_key, cookies=cookies, **kwargs)

    @classmethod
    def stream(cls, messages: Messages | str, model: str | None = None, **kwargs: Any) -> ChatStream:
        """The answer as a :class:`ChatStream` (``async with ... as stream: async for ...``)."""
        return cls._stream("stream", messages, model, **kwargs)

    @classmethod
    async def chat(cls, messages: Messages | str, model: str | None = None, **kwargs: Any) -> ChatResult:
        """The whole answer, with usage and finish reason."""
        async with cls._stream("chat", messages, model, **kwargs) as stream:
            return await stream.collect()

    @classmethod
    def chat_sync(cls, messages: Messages | str, model: str | None = None, **kwargs: Any) -> ChatResult:
        """:meth:`chat` for synchronous code (also inside a running event loop)."""
        cls._split("chat_sync", kwargs)  # a typo fails here, not in the worker thread
        return run_sync(lambda: cls.chat(messages, model, **kwargs))

    @classmethod
    async def get_models_async(cls, **kwargs: Any) -> list[str]:
        """The live model list (kept for ``models_ttl``); the built-in list when unavailable.

        Uses only credentials that exist (explicit or cached): listing models never harvests."""
        settings, urls, call_kw, _ = cls._split("get_models_async", kwargs, options=False, calls=("api_key", "cookies"))
        client = cls._default(settings.replace(allow_harvest=False), urls)
        return await client.models(cls.site, **call_kw)

    @classmethod
    def get_models(cls, **kwargs: Any) -> list[str]:
        """:meth:`get_models_async` for synchronous code (also inside a running event loop)."""
        cls._split("get_models", kwargs, options=False, calls=("api_key", "cookies"))
        return run_sync(lambda: cls.get_models_async(**kwargs))

    @classmethod
    async def aclose(cls) -> None:
        """Close this provider's connections on the running loop."""
        await cls._transport.aclose()

    # -- the default client -----------------------------------------------------------------------
    @classmethod
    def _split(
        cls, where: str, kwargs: dict[str, Any], *, options: bool = True, calls: tuple[str, ...] = CALL_NAMES
    ) -> tuple[Settings, dict[str, str], dict[str, Any], dict[str, Any]]:
        groups = (SETTING_NAMES, cls.url_attributes, calls, OPTION_NAMES if options else ())
        settings_kw, urls, call_kw, option_kw = split_keywords(kwargs, where, *groups)
        settings = (cls.settings or Settings.from_env()).replace(**settings_kw)
        return settings, urls, call_kw, option_kw

    @classmethod
    def _default(cls, settings: Settings, urls: dict[str, str]) -> Client:
        site = cls.site_class(**{name: str(urls.get(name) or getattr(cls, name)) for name in cls.url_attributes})
        return _DefaultClient(cls, settings, site)

    @classmethod
    def _stream(cls, where: str, messages: Messages | str, model: str | None, **kwargs: Any) -> ChatStream:
        settings, urls, call_kw, option_kw = cls._split(where, kwargs)
        client = cls._default(settings, urls)
        generation = str(call_kw.pop("transport", None) or "auto")
        return client._stream(messages, cls.site, cls.get_model(model), generation=generation, options=ChatOptions(**option_kw),
                              system=call_kw.get("system"), api_key=call_kw.get("api_key"), cookies=call_kw.get("cookies"))  # fmt: skip

    @classmethod
    async def _models(cls, call: Call, credentials: Credentials | None = None) -> list[str] | None:
        """The live model list of the call's default client (a hook tests replace)."""
        client = cls._default(call.settings, call.urls)
        return await Client._live(client, call, client.sites[cls.site], credentials)

