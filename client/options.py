"""Typed request options, and the keyword check every entry point shares.

:class:`ChatOptions` holds what a caller may ask of a model. Each field is checked for its type
and for finite numbers before anything is sent; what a provider or protocol generation cannot
honour is refused by the site adapter, also before sending. Anything deliberately sent upstream
unchecked goes through ``extra_body`` (merged into the request body last).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import BadRequest

__all__ = ["OPTION_NAMES", "ChatOptions", "check_finite", "split_keywords", "unknown_keyword"]


@dataclass(frozen=True, slots=True)
class ChatOptions:
    """What one chat asks of the model; ``None`` leaves the provider's default."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    reasoning_format: str | None = None
    service_tier: str | None = None
    user: str | None = None
    n: int | None = None  # only 1: no provider here returns several choices
    logprobs: bool | None = None  # no provider here returns log probabilities
    extra_body: dict[str, Any] | None = None  # sent as given, unchecked, merged last

    def __post_init__(self) -> None:
        for name, kinds in _TYPES.items():
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
                expected = " or ".join(_KIND_NAMES[k] for k in kinds)
                raise BadRequest(f"{name} must be {expected}, not {type(value).__name__}", param=name)
        if isinstance(self.stop, list) and not all(isinstance(s, str) for s in self.stop):
            raise BadRequest("stop must be a string or a list of strings", param="stop")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise BadRequest("max_tokens must be a positive integer", param="max_tokens")
        if self.n not in (None, 1):
            raise BadRequest(f"n={self.n} is not supported: the providers return one choice", param="n")
        if self.logprobs:
            raise BadRequest("logprobs are not supported by these providers", param="logprobs")
        for name in ("temperature", "top_p", "tools", "tool_choice", "response_format", "extra_body"):
            check_finite(getattr(self, name), name)

    def api_fields(self) -> dict[str, Any]:
        """The OpenAI-style request fields that are set (``max_tokens``, ``n``, ``logprobs`` and
        ``extra_body`` are the caller's business: each provider names or refuses them)."""
        skip = ("max_tokens", "n", "logprobs", "extra_body")
        return {f: v for f in OPTION_NAMES if f not in skip and (v := getattr(self, f)) is not None}


_NUMBER = (int, float)
_TYPES: dict[str, tuple[type, ...]] = {
    "temperature": _NUMBER, "top_p": _NUMBER, "max_tokens": (int,), "stop": (str, list), "seed": (int,),
    "tools": (list,), "tool_choice": (str, dict), "parallel_tool_calls": (bool,), "response_format": (dict,),
    "reasoning_effort": (str,), "reasoning_format": (str,), "service_tier": (str,), "user": (str,),
    "n": (int,), "logprobs": (bool,), "extra_body": (dict,),
}  # fmt: skip
_KIND_NAMES = {int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a dict", bool: "a bool"}
OPTION_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(ChatOptions))


def check_finite(value: Any, where: str) -> None:
    """Refuse NaN and infinite numbers anywhere in ``value`` (JSON cannot carry them)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BadRequest(f"{where} must be a finite number, not {value!r}", param=where)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check_finite(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_finite(item, f"{where}[{index}]")


def unknown_keyword(name: str, valid: Iterable[str], where: str) -> TypeError:
    """``TypeError: chat() got an unexpected keyword argument 'temprature'; did you mean 'temperature'?``"""
    close = difflib.get_close_matches(name, sorted(set(valid)), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return TypeError(f"{where}() got an unexpected keyword argument {name!r}{hint}")


def split_keywords(
    kwargs: Mapping[str, Any], where: str, *groups: Iterable[str], elsewhere: Mapping[str, Iterable[str]] | None = None
) -> list[dict[str, Any]]:
    """``kwargs`` split by the names of each group (a name goes to the first group holding it);
    a keyword in no group raises :func:`unknown_keyword`, which says where a name of
    ``elsewhere`` (advice -> names) belongs instead."""
    named = [tuple(group) for group in groups]
    split: list[dict[str, Any]] = [{} for _ in named]
    for key, value in kwargs.items():
        for index, names in enumerate(named):
            if key in names:
                split[index][key] = value
                break
        else:
            for advice, names in (elsewhere or {}).items():
                close = difflib.get_close_matches(key, sorted(set(names)), n=1, cutoff=0.8)
                if close:
                    raise TypeError(f"{where}() got an unexpected keyword argument {key!r}: {close[0]!r} {advice}")
            raise unknown_keyword(key, (n for names in named for n in names), where)
    return split
