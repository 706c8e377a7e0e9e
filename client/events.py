"""What a chat stream yields besides plain ``str`` text chunks.

Text deltas are plain ``str``; everything else is one of the small frozen dataclasses below.
Every parser emits :class:`Usage` and :class:`FinishReason` at most once each, after the text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

__all__ = [
    "Event",
    "FinishReason",
    "Reasoning",
    "ToolCalls",
    "Usage",
    "normalize_tool_call",
]


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of the whole response; ``time_info`` is Cerebras' timing block."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    time_info: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class FinishReason:
    """Why generation stopped: ``stop``, ``length``, ``tool_calls``, ``content_filter``..."""

    reason: str


@dataclass(frozen=True, slots=True)
class Reasoning:
    """A delta of the model's reasoning text (not part of the answer)."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCalls:
    """Complete tool calls, each ``{"id", "type": "function", "function": {"name", "arguments"}}``."""

    calls: list[dict[str, Any]]


Event: TypeAlias = str | Reasoning | ToolCalls | Usage | FinishReason


def _arguments(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps({} if value is None else value, ensure_ascii=False, separators=(",", ":"))


def normalize_tool_call(call: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``call`` in the OpenAI shape.

    Accepts the OpenAI shape itself, the AI SDK shapes ``{toolCallId, toolName, args}`` and
    ``{toolCallId, toolName, input}`` and the Workers AI shape ``{name, arguments}``.
    Non-string arguments are serialised to a JSON string.
    """
    function = call.get("function")
    if isinstance(function, Mapping):
        name, args = function.get("name"), function.get("arguments")
        call_id = call.get("id")
    elif "toolName" in call:
        name, call_id = call.get("toolName"), call.get("toolCallId")
        args = call["args"] if "args" in call else call.get("input")
    else:
        name, call_id = call.get("name"), call.get("id")
        args = call.get("arguments")
    return {
        "id": "" if call_id is None else str(call_id),
        "type": "function",
        "function": {"name": "" if name is None else str(name), "arguments": _arguments(args)},
    }
