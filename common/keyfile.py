"""Named gateway keys as the user writes them: the variable, a keys file.

Sources (merged; a name given twice keeps the later key): ``HARVESTKIT_GATEWAY_KEY`` (named
``default``), ``HARVESTKIT_GATEWAY_KEYS`` (``name:key,name:key``), a keys file (one
``name key`` or ``name:key`` a line, ``#`` comments; owner-only like the session cache) and
the config file's ``[gateway.keys]``. Only names ever reach logs, metrics and the status page.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from harvestkit.cache.errors import HarvestkitError

__all__ = ["KeyConfigError", "parse_keys_file", "parse_keys_variable"]

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class KeyConfigError(HarvestkitError, ValueError):
    """A key definition that cannot be used; the message says which and why (never the key)."""


def _pair(name: str, key: str, where: str) -> tuple[str, str]:
    name, key = name.strip(), key.strip()
    if not _NAME.match(name):
        raise KeyConfigError(f"{where}: a key name must be 1-64 letters, digits, '.', '_' or '-'")
    if len(key) < 8:
        raise KeyConfigError(f"{where}: the key named {name!r} is shorter than 8 characters")
    return name, key


def parse_keys_variable(text: str, where: str = "HARVESTKIT_GATEWAY_KEYS") -> dict[str, str]:
    """``name:key,name:key`` as a mapping."""
    keys = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, key = item.partition(":")
        if not sep:
            raise KeyConfigError(f"{where}: each entry must be name:key (an entry has no ':')")
        name, key = _pair(name, key, where)
        keys[name] = key
    return keys


def parse_keys_file(path: str | Path) -> dict[str, str]:
    """The keys in ``path``; refused when group or others may read it (like ``ssh``)."""
    path = Path(path).expanduser()
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KeyConfigError(f"cannot read the keys file {path}: {exc.strerror}") from None
    if os.name == "posix" and stat.S_IMODE(mode) & 0o077:
        raise KeyConfigError(f"the keys file {path} is readable by others (mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}")
    keys = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not re.search(r"[:\s]", line):
            raise KeyConfigError(f"{path}:{number}: each line must be 'name key' (or name:key)")
        name, key = re.split(r"[:\s]", line, maxsplit=1)
        name, key = _pair(name, key, f"{path}:{number}")
        keys[name] = key
    return keys
