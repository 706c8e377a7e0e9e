"""Named gateway keys: which key a request presented, by name, compared in constant time.

Where keys come from is :mod:`harvestkit.common.keyfile` and :mod:`harvestkit.common.config`;
only names ever reach logs, metrics and the status page.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from harvestkit.common.keyfile import KeyConfigError, parse_keys_file, parse_keys_variable

__all__ = ["KeyConfigError", "Keys", "parse_keys_file", "parse_keys_variable"]


def _digest(text: str) -> bytes:
    """A fixed-length digest, so the comparison does not reveal a key's length either."""
    return hashlib.sha256(text.encode()).digest()


class Keys:
    """The gateway's keys by name; empty means no key is required."""

    def __init__(self, keys: Mapping[str, str] | None = None) -> None:
        self._digests = {name: _digest(key) for name, key in (keys or {}).items()}

    def __bool__(self) -> bool:
        return bool(self._digests)

    @property
    def names(self) -> list[str]:
        return sorted(self._digests)

    def match(self, given: str) -> str | None:
        """The name of the key ``given`` is, or None; every key is compared, in constant time."""
        digest = _digest(given)
        found = None
        for name, expected in self._digests.items():
            if hmac.compare_digest(digest, expected):
                found = name
        return found
