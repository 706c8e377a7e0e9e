"""The instance client: settings, the auth cache, a transport, live model lists, retries.

    async with Client() as client:
        answer = await client.chat("Hi", provider="cerebras", model="gemma-4-31b", temperature=0.2)
        async with client.stream("Hi", provider="cloudflare") as stream:
            async for text in stream.text_stream():
                print(text, end="")

Two clients share nothing: each has its own connections, model lists and settings (e.g. two
proxies or two profiles in one process). ``client.with_options(...)`` derives a client with
other settings that shares this one's connections and model lists. The path of one call:

credentials -> model check -> attempt -> (retry with backoff | recover once) -> events
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from .base_transport import Transport
from .call import Call
from .credentials import Credentials, SiteAuth
from .errors import ClientError, ModelNotFound, StreamBroken
from .events import Event
from .options import OPTION_NAMES, ChatOptions, split_keywords
from .pooled import Sessions, listing_call
from .settings import SETTING_NAMES, Settings
from .site import Site, as_messages
from .stream import ChatResult, ChatStream

if TYPE_CHECKING:
    from .sync import SyncClient

__all__ = ["Client", "Messages", "ModelCache"]

Messages = Sequence[Mapping[str, Any]]
SETTINGS_ADVICE = {"is a client setting: use Client(...) or client.with_options(...)": SETTING_NAMES}


Fetches = weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, "asyncio.Task[list[str] | None]"]]


class ModelCache:
    """Live model lists by endpoint URL, each kept for the calling settings' ``models_ttl``,
    and the fetch of each under way (per event loop)."""

    def __init__(self, store: dict[str, tuple[float, list[str]]] | None = None, fetches: Fetches | None = None) -> None:
        self.store = {} if store is None else store
        self.fetches: Fetches = weakref.WeakKeyDictionary() if fetches is None else fetches

    async def fetch_once(self, endpoint: str, fetch: Callable[[], Awaitable[list[str] | None]]) -> list[str] | None:
        """What ``fetch()`` gives, shared with every caller that asks for ``endpoint`` while it
        runs; a caller that gives up leaves it to the others."""
        loop = asyncio.get_running_loop()
        running = self.fetches.setdefault(loop, {})
        task = running.get(endpoint)
        if task is None:
            task = running[endpoint] = loop.create_task(fetch())
            task.add_done_callback(lambda done: (running.pop(endpoint, None), done.cancelled() or done.exception()))
        return await asyncio.shield(task)

    def get(self, endpoint: str, ttl: float) -> list[str] | None:
        cached = self.store.get(endpoint)
        if cached is not None and time.monotonic() - cached[0] < ttl:
            return cached[1]
        return None

    def put(self, endpoint: str, models: list[str]) -> None:
        self.store[endpoint] = (time.monotonic(), list(models))

    def drop(self, endpoint: str) -> None:
        self.store.pop(endpoint, None)


def default_sites() -> dict[str, Site]:
    from .cerebras import CerebrasSite
    from .cloudflare import CloudflareSite

    return {site.name: site for site in (CerebrasSite(), CloudflareSite())}


class Client:
    """An async client for the harvested sites (``provider="cerebras"`` or ``"cloudflare"``).

    ``settings`` (default ``Settings.from_env()``) and any ``Settings`` field by keyword;
    ``transport`` (default a new :class:`~harvestkit.client.transport.CurlTransport`, which joins
    a recording in progress, see :mod:`harvestkit.common.recording`);
    ``sites`` to replace a site adapter (e.g. ``CerebrasSite(api_base=...)``)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        transport: Transport | None = None,
        sites: Iterable[Site] | None = None,
        **settings_fields: Any,
    ) -> None:
        self.settings = (settings or Settings.from_env()).replace(**settings_fields)
        if transport is None:
            from .recording_transport import RecordingTransport
            from .transport import CurlTransport

            transport = RecordingTransport(CurlTransport())  # records only inside `--record`
        self.transport: Transport = transport
        self.cache = self.settings.auth_cache()
        self.model_cache = ModelCache()
        self.sites = default_sites()
        self.sites.update({site.name: site for site in sites or ()})
        self.closed = False

    def with_options(self, **settings_fields: Any) -> Client:
        """A client with these settings changed, sharing this one's transport, auth cache (unless
        ``cache`` is given) and model lists; closing either closes the shared transport."""
        derived = object.__new__(type(self))
        derived.__dict__.update(self.__dict__)
        derived.settings = self.settings.replace(**settings_fields)
        if "cache" in settings_fields:
            derived.cache = derived.settings.auth_cache()
        return derived

    def site(self, provider: str) -> Site:
        """The adapter for ``provider`` (a site name, any case)."""
        if self.closed:
            raise RuntimeError("the client is closed: make a new Client")
        try:
            return self.sites[str(provider).lower()]
        except KeyError:
            raise ValueError(f"unknown provider {provider!r}; known: {', '.join(self.sites)}") from None

    # -- chats ------------------------------------------------------------------------------------
    def stream(
        self,
        messages: Messages | str,
        provider: str = "cerebras",
        model: str | None = None,
        *,
        system: str | None = None,
        api_key: str | None = None,
        cookies: dict[str, str] | None = None,
        generation: str = "auto",
        **options: Any,
    ) -> ChatStream:
        """The answer as a :class:`ChatStream` (``async with ... as stream: async for ...``).

        ``options``: the :class:`ChatOptions` fields (``extra_body`` for anything sent unchecked);
        an unknown keyword raises ``TypeError``, an option the site cannot honour ``BadRequest``,
        both before anything is sent. ``api_key``/``cookies``: explicit credentials (never cached,
        never harvested). ``generation``: Cloudflare's protocol generation (``auto``)."""
        (checked,) = split_keywords(options, "stream", OPTION_NAMES, elsewhere=SETTINGS_ADVICE)
        return self._stream(messages, provider, model, system=system, api_key=api_key, cookies=cookies,
                            generation=generation, options=ChatOptions(**checked))  # fmt: skip

    async def chat(self, messages: Messages | str, provider: str = "cerebras", model: str | None = None, **kwargs: Any) -> ChatResult:
        """The whole answer, with usage and finish reason; keywords as for :meth:`stream`."""
        names = ("system", "api_key", "cookies", "generation", *OPTION_NAMES)
        (checked,) = split_keywords(kwargs, "chat", names, elsewhere=SETTINGS_ADVICE)
        async with self.stream(messages, provider, model, **checked) as stream:
            return await stream.collect()

    async def models(self, provider: str = "cerebras", *, api_key: str | None = None, cookies: dict[str, str] | None = None) -> list[str]:
        """The live model list (kept for ``models_ttl``); the built-in list when unavailable.
        Uses only credentials that exist (explicit or cached): listing models never harvests."""
        site = self.site(provider)
        call = self._call(site, self.settings.replace(allow_harvest=False), api_key, cookies, ChatOptions())
        live = await self._live(await listing_call(call, site), site)
        return live if live is not None else list(site.models)

    def sync(self) -> SyncClient:
        """This client for synchronous code (see :class:`SyncClient`)."""
        from .sync import SyncClient

        return SyncClient(self)

    # -- lifetime ---------------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Close this client's connections on the running event loop (idempotent)."""
        self.closed = True
        await self.transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- the path of one call ---------------------------------------------------------------------
    def _stream(
        self,
        messages: Messages | str,
        provider: str,
        model: str | None,
        *,
        system: str | None,
        api_key: str | None,
        cookies: dict[str, str] | None,
        generation: str,
        options: ChatOptions,
        settings: Settings | None = None,
    ) -> ChatStream:
        site = self.site(provider)
        resolved = site.get_model(model)
        listed = as_messages(messages, system)
        call = self._call(site, settings or self.settings, api_key, cookies, options, generation)
        site.check(call, listed)
        return ChatStream(self._events(call, site, resolved, listed), provider=site.name, model=resolved)

    def _call(
        self,
        site: Site,
        settings: Settings,
        api_key: str | None,
        cookies: dict[str, str] | None,
        options: ChatOptions,
        generation: str = "auto",
    ) -> Call:
        cache = self.cache if settings.cache is None or settings.cache is self.cache else settings.auth_cache()
        auth = SiteAuth(site.name, settings, api_key=api_key, cookies=cookies, login_hint=site.login_hint, cache=cache)
        deadline = None if settings.total_timeout is None else time.monotonic() + settings.total_timeout
        return Call(site.name, settings, dict(site.urls), auth, self.transport, options, generation, deadline)

    async def _events(self, call: Call, site: Site, model: str, messages: list[dict[str, Any]]) -> AsyncGenerator[list[Event], None]:
        sessions = Sessions(call, site)  # the one session, or a member of the site's pool
        credentials = await sessions.first()
        live = await self._live(sessions.call, site, credentials)
        if live is not None and model not in live:
            raise _not_live(model, live, site.name)
        retry, attempt = call.retry, 0
        while True:
            yielded = False
            try:
                async with contextlib.aclosing(site.events(sessions.call, credentials, model, messages)) as events:
                    async for batch in events:
                        yielded = True
                        yield batch
                return
            except ClientError as error:
                if yielded:
                    raise _broken(error) from error
                if isinstance(error, ModelNotFound):  # retired since the list was read, or no list
                    raise await self._named_live(sessions.call, site, credentials, model, error) from error
                moved, error = await sessions.after(error, credentials)  # another pool member, or recovered
                if moved is not None:
                    credentials = moved
                    continue
                attempt += 1
                delay = retry.delay(attempt, error)
                if delay is None or (call.deadline is not None and time.monotonic() + delay > call.deadline):
                    raise error
                await asyncio.sleep(delay)
                credentials = await sessions.again() or credentials

    async def _live(self, call: Call, site: Site, credentials: Credentials | None = None) -> list[str] | None:
        """The live model list, cached for ``models_ttl``; None when it cannot be had. Callers
        that find it missing while it is being fetched wait for that fetch."""
        endpoint = call.urls[site.models_endpoint]
        cached = self.model_cache.get(endpoint, call.settings.models_ttl)
        if cached is not None:
            return cached
        return await self.model_cache.fetch_once(endpoint, lambda: self._fetch_live(call, site, credentials, endpoint))

    async def _fetch_live(self, call: Call, site: Site, credentials: Credentials | None, endpoint: str) -> list[str] | None:
        try:
            if credentials is None:
                credentials = await call.auth.load() or call.auth.default()
            live = await site.fetch_models(call, credentials)
        except ClientError:
            return None
        if live:
            self.model_cache.put(endpoint, live)
        return live or None

    async def _named_live(
        self, call: Call, site: Site, credentials: Credentials, model: str, error: ModelNotFound
    ) -> ModelNotFound:
        """The service's 404 for ``model``, naming the models it lists now (the cached list is
        renewed, so the next call is refused before it is sent)."""
        self.model_cache.drop(call.urls[site.models_endpoint])
        live = await self._live(call, site, credentials)
        if not live or model in live:
            return error
        return _not_live(model, live, site.name, error)


def _not_live(model: str, live: list[str], provider: str, answer: ModelNotFound | None = None) -> ModelNotFound:
    return ModelNotFound(
        f"model {model!r} is not in the live list; live models: {', '.join(sorted(live)[:20])}",
        provider=provider,
        status_code=answer.status_code if answer else None,
        code=answer.code if answer else None,
    )


def _broken(error: ClientError) -> StreamBroken:
    """A failure after the first event, as :class:`StreamBroken` (the stream adds its text)."""
    if isinstance(error, StreamBroken):
        return error
    return StreamBroken(
        f"the stream failed mid-way: {error.message}",
        cause=error,
        status_code=error.status_code,
        code=error.code,
        provider=error.provider,
    )

