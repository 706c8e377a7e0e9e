"""Provider-agnostic entry points over the default clients: ``await chat("Hi", provider="cloudflare")``."""

from __future__ import annotations

from typing import Any

from .cerebras import Cerebras
from .cloudflare import Cloudflare
from .provider import Messages, Provider
from .stream import ChatResult, ChatStream
from .sync import run_sync

__all__ = ["PROVIDERS", "aclose", "chat", "chat_sync", "get_provider", "stream"]

PROVIDERS: dict[str, type[Provider]] = {"cerebras": Cerebras, "cloudflare": Cloudflare}


def get_provider(provider: str | type[Provider]) -> type[Provider]:
    """The provider class for a name (``"cerebras"``, ``"cloudflare"``) or the class itself."""
    if isinstance(provider, type) and issubclass(provider, Provider):
        return provider
    try:
        return PROVIDERS[str(provider).lower()]
    except KeyError:
        raise ValueError(f"unknown provider {provider!r}; known: {', '.join(PROVIDERS)}") from None


def stream(
    messages: Messages | str, *, provider: str | type[Provider] = "cerebras", model: str | None = None, **kwargs: Any
) -> ChatStream:
    """The answer as a :class:`ChatStream`; keywords as for ``create_async_generator``."""
    return get_provider(provider).stream(messages, model, **kwargs)


async def chat(
    messages: Messages | str, *, provider: str | type[Provider] = "cerebras", model: str | None = None, **kwargs: Any
) -> ChatResult:
    """The whole answer with usage and finish reason."""
    return await get_provider(provider).chat(messages, model, **kwargs)


def chat_sync(
    messages: Messages | str, *, provider: str | type[Provider] = "cerebras", model: str | None = None, **kwargs: Any
) -> ChatResult:
    """:func:`chat` for synchronous code, also inside a running event loop."""
    get_provider(provider)._split("chat_sync", kwargs)  # a typo fails here, not in the worker thread
    return run_sync(lambda: chat(messages, provider=provider, model=model, **kwargs))


async def aclose() -> None:
    """Close the default clients' connections on the running event loop (a
    :class:`~harvestkit.client.Client` closes its own)."""
    for provider in PROVIDERS.values():
        await provider.aclose()
