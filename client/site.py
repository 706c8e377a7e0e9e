"""A site adapter: what one service needs, and only that.

An adapter knows its URLs, models and aliases, builds its requests, chooses its parser and
recovers its credentials. Everything around it (settings, the auth cache, the transport, the
live model cache, retries and recovery) belongs to the :class:`~harvestkit.client.Client`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, ClassVar

from .call import Call
from .credentials import Credentials
from .errors import BadRequest, ClientError
from .events import Event
from .options import ChatOptions

__all__ = ["Site", "as_messages", "text_only"]


def as_messages(messages: Sequence[Mapping[str, Any]] | str, system: str | None = None) -> list[dict[str, Any]]:
    """A prompt string or a message list as a message list, with ``system`` put first."""
    listed = [{"role": "user", "content": messages}] if isinstance(messages, str) else [dict(m) for m in messages]
    if system is not None:
        listed = [{"role": "system", "content": system}, *[m for m in listed if m.get("role") != "system"]]
    return listed


def text_only(messages: list[dict[str, Any]], site: str) -> None:
    """Refuse content parts other than text (images, audio, files): no model here reads them."""
    for index, message in enumerate(messages):
        content = message.get("content")
        if content is None or isinstance(content, str):
            continue
        if not isinstance(content, list):
            raise BadRequest(f"messages[{index}].content must be a string or a list of text parts",
                             param=f"messages[{index}].content", provider=site)  # fmt: skip
        for part_index, part in enumerate(content):
            if not isinstance(part, Mapping) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
                raise BadRequest(
                    f"messages[{index}].content[{part_index}] is a {kind!r} part: only text parts are supported",
                    param=f"messages[{index}].content", provider=site,
                )  # fmt: skip


class Site:
    """Base of the site adapters; an instance holds its URLs (class defaults, overridable)."""

    name: ClassVar[str] = ""  # the auth cache's site name and the ``provider=`` keyword
    default_model: ClassVar[str] = ""
    models: ClassVar[list[str]] = []
    model_aliases: ClassVar[dict[str, str]] = {}
    url_names: ClassVar[tuple[str, ...]] = ("url",)
    default_urls: ClassVar[dict[str, str]] = {}
    models_endpoint: ClassVar[str] = "url"  # the URL the live model list comes from
    login_hint: ClassVar[str] = ""

    def __init__(self, **urls: str) -> None:
        from .options import unknown_keyword

        for name in urls:
            if name not in self.url_names:
                raise unknown_keyword(name, self.url_names, type(self).__name__)
        self.urls = {name: str(urls.get(name) or self.default_urls[name]) for name in self.url_names}

    def get_model(self, model: str | None) -> str:
        """The model id for ``model``: the default when empty, aliases resolved."""
        if not model:
            return self.default_model
        return self.model_aliases.get(model, model)

    def check(self, call: Call, messages: list[dict[str, Any]]) -> None:
        """Refuse, before sending, what this site cannot honour (:class:`BadRequest`)."""
        text_only(messages, self.name)

    def upstream_messages(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The history as the service accepts it."""
        return messages

    # -- hooks ---------------------------------------------------------------------------------
    async def credentials(self, call: Call) -> Credentials:
        """What a call presents: cached, harvested or explicit credentials."""
        raise NotImplementedError

    def events(self, call: Call, credentials: Credentials, model: str, messages: list[dict[str, Any]]) -> AsyncGenerator[list[Event], None]:
        """One attempt: request, check, parse; the events in batches (one per network read or
        frame, never empty), so a chunk passes no generator of its own."""
        raise NotImplementedError

    def recoverable(self, error: ClientError, credentials: Credentials) -> bool:
        """Whether fresh credentials may cure ``error``."""
        raise NotImplementedError

    async def recover(self, call: Call, credentials: Credentials, error: ClientError) -> Credentials:
        """One fresh set of credentials after an auth failure."""
        raise NotImplementedError

    async def fetch_models(self, call: Call, credentials: Credentials) -> list[str]:
        """The live model list."""
        raise NotImplementedError


def checked_options(options: ChatOptions, site: str, refused: Mapping[str, str]) -> None:
    """Raise :class:`BadRequest` for the first set option in ``refused`` (name -> why)."""
    for name, why in refused.items():
        if getattr(options, name) is not None:
            raise BadRequest(f"{name} is not supported: {why}", param=name, provider=site)
