"""Which provider answers a model id, and the ids ``GET /v1/models`` lists.

``cerebras/<model>`` and ``cloudflare/<model>`` always name their provider (the provider
resolves aliases and checks its live list). A bare id or alias is accepted when exactly one
provider offers it; one both offer (``gpt-oss-120b``) must be prefixed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harvestkit.client.provider import Provider

from .errors import GatewayError
from .openai_format import model_object

__all__ = ["Catalog", "ModelTable", "Route"]


@dataclass(frozen=True)
class Route:
    """A provider and the model id (or alias) to ask it for."""

    provider: str
    cls: type[Provider]
    model: str


class ModelTable:
    """Model ids and aliases per provider, and the bare names only one of them offers."""

    def __init__(self, offers: Mapping[str, tuple[Sequence[str], Mapping[str, str]]]) -> None:
        """``offers``: provider name -> (model ids, aliases); an alias counts only if its
        target is among the ids."""
        self.ids = {provider: list(ids) for provider, (ids, _) in offers.items()}
        self.owners: dict[str, list[str]] = {}
        for provider, (ids, aliases) in offers.items():
            names = list(ids) + [alias for alias, target in aliases.items() if target in ids]
            for name in dict.fromkeys(names):
                self.owners.setdefault(name, []).append(provider)

    def provider_of(self, name: str) -> str:
        """The one provider offering the bare ``name``; 404 when none or several do."""
        owners = self.owners.get(name, [])
        if len(owners) == 1:
            return owners[0]
        if owners:
            choices = " or ".join(f"'{provider}/{name}'" for provider in owners)
            message = f"the model '{name}' is offered by {' and '.join(owners)}: use {choices}"
        else:
            message = f"the model '{name}' does not exist; GET /v1/models lists the models"
        raise GatewayError(404, message, "invalid_request_error", "model_not_found", "model")

    def listing(self) -> list[dict[str, Any]]:
        """``GET /v1/models``: every ``provider/id``, then the unambiguous bare ids and aliases."""
        prefixed = [model_object(f"{p}/{model}", p) for p, ids in self.ids.items() for model in ids]
        bare = [model_object(name, owners[0]) for name, owners in self.owners.items() if len(owners) == 1]
        return prefixed + bare


class Catalog:
    """The providers' model lists (live when a session exists), kept for ``ttl`` seconds.

    One clock: a refresh fetches the live lists anew (it bypasses the client's model cache,
    which it also renews), so neither the table nor a list is ever older than ``ttl``."""

    def __init__(
        self,
        providers: Mapping[str, type[Provider]],
        options: Mapping[str, Any],
        ttl: float = 60.0,
        per_provider: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.providers = dict(providers)
        self.options = dict(options)
        self.per_provider = {name: dict(extra) for name, extra in (per_provider or {}).items()}
        self.ttl = ttl
        self._table: ModelTable | None = None
        self._fetched = 0.0
        self._lock = asyncio.Lock()

    async def table(self) -> ModelTable:
        """The current table; one refresh at a time, however many requests wait for it."""
        async with self._lock:
            if self._table is None or time.monotonic() - self._fetched >= self.ttl:
                fresh = {**self.options, "models_ttl": 0}  # bypass and renew the client's lists
                lists = await asyncio.gather(
                    *(
                        cls.get_models_async(**{**fresh, **self.per_provider.get(name, {})})
                        for name, cls in self.providers.items()
                    )
                )
                self._table = ModelTable(
                    {
                        name: (models, cls.model_aliases)
                        for (name, cls), models in zip(self.providers.items(), lists)
                    }
                )
                self._fetched = time.monotonic()
            return self._table

    async def route(self, model: str) -> Route:
        """The route for a request's ``model``; 404 for an unknown or ambiguous bare id."""
        prefix, _, rest = model.partition("/")
        if prefix in self.providers:
            if not rest:
                raise GatewayError(404, f"the model '{model}' names no model", "invalid_request_error",
                                   "model_not_found", "model")  # fmt: skip
            return Route(prefix, self.providers[prefix], rest)
        provider = (await self.table()).provider_of(model)
        return Route(provider, self.providers[provider], model)
