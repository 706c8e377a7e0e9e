"""A ``POST /v1/chat/completions`` body, checked and turned into the client's keywords.

Only the fields below reach the provider, so a request can never set a client setting, a URL
or a credential. Fields OpenAI defines that no provider here supports (``frequency_penalty``,
``logprobs``...) are ignored, as most OpenAI-compatible servers do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .errors import GatewayError

__all__ = ["ChatRequest", "parse_chat_request"]

ROLES = ("system", "developer", "user", "assistant", "tool")
NUMBER = (int, float)
# Passed to the provider as keywords when present (Cerebras uses them all; Cloudflare what it can).
PASSTHROUGH: dict[str, tuple[type, ...]] = {
    "temperature": NUMBER,
    "top_p": NUMBER,
    "seed": (int,),
    "stop": (str, list),
    "tools": (list,),
    "tool_choice": (str, dict),
    "parallel_tool_calls": (bool,),
    "response_format": (dict,),
    "reasoning_effort": (str,),
    "user": (str,),
}
TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", list: "an array", dict: "an object",
              bool: "a boolean"}  # fmt: skip


@dataclass(frozen=True)
class ChatRequest:
    """What the gateway needs from one chat request."""

    model: str
    messages: list[dict[str, Any]]
    stream: bool = False
    include_usage: bool = False
    params: dict[str, Any] = field(default_factory=dict)  # the provider's keywords


def invalid(message: str, param: str | None = None, code: str = "invalid_value") -> GatewayError:
    return GatewayError(400, message, "invalid_request_error", code, param)


def _typed(body: dict[str, Any], name: str, types: tuple[type, ...]) -> Any:
    """``body[name]`` (None when absent or null), checked against ``types`` (bool is not a number)."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) and bool not in types or not isinstance(value, types):
        expected = " or ".join(TYPE_NAMES[t] for t in types)
        raise invalid(f"{name} must be {expected}", name, "invalid_type")
    return value


def _messages(value: Any) -> list[dict[str, Any]]:
    if value is None:
        raise invalid("messages is required", "messages", "missing_field")
    if not isinstance(value, list) or not value:
        raise invalid("messages must be a non-empty array of messages", "messages", "invalid_type")
    messages = []
    for index, message in enumerate(value):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise invalid(
                f"messages[{index}] must be an object with a role of {', '.join(ROLES)}",
                f"messages[{index}].role",
            )
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise invalid(
                f"messages[{index}].content must be a string or an array of parts",
                f"messages[{index}].content",
                "invalid_type",
            )
        message = dict(message)
        if message["role"] == "developer":  # OpenAI's newer name for the system role
            message["role"] = "system"
        messages.append(message)
    return messages


def _max_tokens(body: dict[str, Any]) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = _typed(body, name, (int,))
        if value is not None:
            if value < 1:
                raise invalid(f"{name} must be a positive integer", name)
            return value
    return None


def parse_chat_request(raw: bytes) -> ChatRequest:
    """The request in ``raw`` (a JSON body); a :class:`GatewayError` (400) says what is wrong."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise invalid("the request body is not valid JSON", code="invalid_json") from None
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object", code="invalid_json")
    model = _typed(body, "model", (str,))
    if not model:
        raise invalid("model is required", "model", "missing_field")
    messages = _messages(body.get("messages"))
    if _typed(body, "n", (int,)) not in (None, 1):
        raise invalid("only n=1 is supported", "n")
    stream = bool(_typed(body, "stream", (bool,)))
    options = _typed(body, "stream_options", (dict,)) or {}
    include_usage = bool(_typed(options, "include_usage", (bool,)))
    params = {name: value for name, types in PASSTHROUGH.items() if (value := _typed(body, name, types)) is not None}
    stop = params.get("stop")
    if isinstance(stop, list) and not all(isinstance(s, str) for s in stop):
        raise invalid("stop must be a string or an array of strings", "stop", "invalid_type")
    max_tokens = _max_tokens(body)
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    return ChatRequest(model, messages, stream, include_usage and stream, params)
