"""The bounded in-memory store behind ``store`` and ``previous_response_id``.

A stored response keeps its conversation as chat messages (earlier turns, this input, this
output; instructions are not carried over, as in OpenAI's API) so a later request can continue
it. The store lives in the gateway's memory only: it holds at most ``max_entries`` responses
and about ``max_bytes`` of text, evicts the oldest first and forgets a response after
``max_age`` seconds; a restart forgets everything. A response is visible only to requests made
with the same gateway key (by name).
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

__all__ = ["ResponseStore", "StoredResponse"]


@dataclass(frozen=True)
class StoredResponse:
    owner: str | None  # the gateway key's name
    messages: list[dict[str, Any]]  # the whole conversation up to and including this response
    response: dict[str, Any]  # the response object as answered
    size: int
    stored_at: float


class ResponseStore:
    """Responses by id, oldest evicted first."""

    def __init__(self, max_entries: int = 1000, max_bytes: int = 64 * 1024 * 1024, max_age: float = 3600.0) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_age = max_age
        self._items: OrderedDict[str, StoredResponse] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, owner: str | None, messages: list[dict[str, Any]], response: dict[str, Any]) -> None:
        size = len(json.dumps(messages, ensure_ascii=False)) + len(json.dumps(response, ensure_ascii=False))
        if size > self.max_bytes:
            return  # larger than the whole store: not kept (a later previous_response_id gets a 400)
        self._drop(response["id"])
        self._items[response["id"]] = StoredResponse(owner, messages, response, size, time.monotonic())
        self._bytes += size
        while len(self._items) > self.max_entries or self._bytes > self.max_bytes:
            self._drop(next(iter(self._items)))

    def get(self, owner: str | None, response_id: str) -> StoredResponse | None:
        """The stored response, if it exists, has not aged out, and belongs to ``owner``."""
        item = self._items.get(response_id)
        if item is None:
            return None
        if time.monotonic() - item.stored_at > self.max_age:
            self._drop(response_id)
            return None
        return item if item.owner == owner else None

    def delete(self, owner: str | None, response_id: str) -> bool:
        if self.get(owner, response_id) is None:
            return False
        self._drop(response_id)
        return True

    def _drop(self, response_id: str) -> None:
        item = self._items.pop(response_id, None)
        if item is not None:
            self._bytes -= item.size
