"""Running the async client from synchronous code, also inside a running event loop (Jupyter).

Both go through the one sync bridge, :mod:`harvestkit.common.syncrun`: each call runs on a
private event loop, and the connections opened on it are closed before the call returns.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from harvestkit.common.syncrun import run_sync as _run

from .stream import ChatResult
from .transport import close_loop_sessions

if TYPE_CHECKING:
    from .client import Client, Messages

__all__ = ["SyncClient", "run_sync"]

T = TypeVar("T")


def run_sync(factory: Callable[[], Awaitable[T]]) -> T:
    """Run ``factory()`` to completion on a private event loop and return its result; the
    sessions opened on that loop are closed before returning."""

    async def and_close() -> T:
        try:
            return await factory()
        finally:
            await close_loop_sessions()

    return _run(and_close)


class SyncClient:
    """A :class:`~harvestkit.client.Client` for synchronous code: the same settings, auth
    cache and model lists; ``chat`` and ``models`` block until done. ``with`` closes nothing
    that outlives a call (each call's connections close with it)."""

    def __init__(self, client: Client | None = None, **settings: Any) -> None:
        if client is None:
            from .client import Client

            client = Client(**settings)
        elif settings:
            client = client.with_options(**settings)
        self.client = client

    def chat(self, messages: Messages | str, provider: str = "cerebras", model: str | None = None, **kwargs: Any) -> ChatResult:
        """:meth:`Client.chat`, blocking."""
        return run_sync(lambda: self.client.chat(messages, provider, model, **kwargs))

    def models(self, provider: str = "cerebras", **kwargs: Any) -> list[str]:
        """:meth:`Client.models`, blocking."""
        return run_sync(lambda: self.client.models(provider, **kwargs))

    def close(self) -> None:
        """Nothing stays open between calls; kept for ``with`` and symmetry."""

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
