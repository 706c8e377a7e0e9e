"""Model lists: Cerebras ``/v1/models``, Cloudflare ``/api/models`` and the ``getModels`` RPC."""

from __future__ import annotations

from typing import Any

from harvestkit.client.errors import ProtocolError
from harvestkit.client.parsers._common import json_body

__all__ = ["cerebras_models", "cloudflare_models"]

TEXT_GENERATION = "Text Generation"


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def cerebras_models(body: bytes | str | Any, provider: str = "cerebras") -> list[str]:
    """Model ids from a ``/v1/models`` body ``{"object": "list", "data": [{"id": ...}]}``."""
    data = json_body(body, provider, "model list")
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ProtocolError("the model list has no 'data' array", provider=provider)
    return _unique([str(m["id"]) for m in items if isinstance(m, dict) and m.get("id")])


def _task(model: dict[str, Any]) -> str | None:
    task = model.get("task")
    if isinstance(task, dict):
        task = task.get("name")
    return task if isinstance(task, str) else None


def cloudflare_models(body: bytes | str | Any, provider: str = "cloudflare") -> list[str]:
    """Text-generation model names from ``/api/models`` (``{"models": [...]}``) or from the
    ``getModels`` RPC result (a list of the same objects).  Models whose task is given and is
    not "Text Generation" are dropped; plain name strings are kept."""
    data = json_body(body, provider, "model list")
    items = data.get("models") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ProtocolError(
            "the model list is neither a list nor has a 'models' array", provider=provider
        )
    names = []
    for model in items:
        if isinstance(model, str):
            names.append(model)
        elif isinstance(model, dict) and isinstance(model.get("name"), str):
            task = _task(model)
            if task is None or task == TEXT_GENERATION:
                names.append(model["name"])
    return _unique(names)
