"""Type checks for records read back from JSON.

Every failure is a `CacheCorruptError` naming the field (e.g. "cookies[2].expires") and
the type found, never the value, so that messages cannot leak secrets.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .errors import CacheCorruptError

SCHEMA_VERSION = 1
_MISSING = object()


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def need(data: Mapping[str, Any], key: str, where: str, *, optional: bool = False, missing: Any = _MISSING) -> Any:
    """The value at `key`; a missing key is corrupt unless a `missing` default is given (an
    explicit null is fine if `optional`)."""
    value = data.get(key, _MISSING)
    if value is _MISSING:
        if missing is not _MISSING:
            return missing
        raise CacheCorruptError(f"missing field {where}{key}")
    if value is None and not optional:
        raise CacheCorruptError(f"field {where}{key} must not be null")
    return value


def _typed(
    data: Mapping[str, Any], key: str, where: str, kind: type, label: str, optional: bool = False, missing: Any = _MISSING
) -> Any:
    value = need(data, key, where, optional=optional, missing=missing)
    if value is not None and not isinstance(value, kind):
        raise CacheCorruptError(f"field {where}{key} must be {label}, not {_kind(value)}")
    return value


def as_str(
    data: Mapping[str, Any], key: str, where: str = "", *, optional: bool = False, missing: Any = _MISSING
) -> str | None:
    return _typed(data, key, where, str, "a string", optional, missing)


def as_str_list(data: Mapping[str, Any], key: str, where: str = "", *, missing: Any = _MISSING) -> list[str]:
    value = _typed(data, key, where, list, "a list", missing=missing)
    if not all(isinstance(item, str) for item in value):
        raise CacheCorruptError(f"field {where}{key} must be a list of strings")
    return list(value)


def as_float(data: Mapping[str, Any], key: str, where: str = "", *, optional: bool = False) -> float | None:
    value = need(data, key, where, optional=optional)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CacheCorruptError(f"field {where}{key} must be a finite number, not {_kind(value)}")
    return float(value)


def as_bool(data: Mapping[str, Any], key: str, where: str = "") -> bool:
    return _typed(data, key, where, bool, "true or false")


def as_dict(data: Mapping[str, Any], key: str, where: str = "", *, values: type | None = None) -> dict:
    value = need(data, key, where)
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise CacheCorruptError(f"field {where}{key} must be an object, not {_kind(value)}")
    if values is not None and not all(isinstance(v, values) for v in value.values()):
        raise CacheCorruptError(f"field {where}{key} must map to {values.__name__} values")
    return dict(value)


def as_list(data: Mapping[str, Any], key: str, where: str = "") -> list:
    return _typed(data, key, where, list, "a list")


def as_mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise CacheCorruptError(f"{where or 'record'} must be an object, not {_kind(value)}")
    return value
