"""A ``POST /v1/chat/completions`` body, checked and turned into the client's keywords.

Only the fields below reach the provider, so a request can never set a client setting, a URL
or a credential. A field OpenAI defines that no provider here can honour (``logprobs``,
``n`` > 1, penalties, audio...) is a 400 saying so unless it holds its no-op default, and so
are content parts that are not text and numbers that are NaN or infinite: never a silent drop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .errors import GatewayError

__all__ = ["ChatRequest", "check_unsupported", "typed", "invalid", "load_json", "parse_chat_request", "text_content"]

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
# OpenAI fields no provider here honours, and the value that means "not used".
UNSUPPORTED: dict[str, tuple[object, ...]] = {
    "logprobs": (False,),
    "top_logprobs": (0,),
    "frequency_penalty": (0, 0.0),
    "presence_penalty": (0, 0.0),
    "logit_bias": ({},),
    "audio": (),
    "modalities": (["text"],),
    "prediction": (),
    "web_search_options": (),
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


def typed(body: dict[str, Any], name: str, types: tuple[type, ...]) -> Any:
    """``body[name]`` (None when absent or null), checked against ``types`` (bool is not a number)."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) and bool not in types or not isinstance(value, types):
        expected = " or ".join(TYPE_NAMES[t] for t in types)
        raise invalid(f"{name} must be {expected}", name, "invalid_type")
    return value


def _not_finite(text: str) -> float:
    raise invalid(f"{text} is not a number the gateway accepts (NaN and infinite values are refused)", code="invalid_number")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        _not_finite(text[:32])
    return value


def load_json(raw: bytes) -> dict[str, Any]:
    """The JSON object in ``raw``; 400 for invalid JSON, a non-object, NaN or an infinite number."""
    try:
        body = json.loads(raw, parse_constant=_not_finite, parse_float=_finite)
    except (ValueError, RecursionError):
        raise invalid("the request body is not valid JSON", code="invalid_json") from None
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object", code="invalid_json")
    return body


def check_unsupported(body: dict[str, Any], names: dict[str, tuple[object, ...]] = UNSUPPORTED) -> None:
    """400 for a field in ``names`` set to anything but its no-op value."""
    for name, defaults in names.items():
        value = body.get(name)
        if value is not None and not any(value == d and type(value) is type(d) for d in defaults):
            raise invalid(f"{name} is not supported by this gateway's providers; remove it", name, "unsupported_parameter")


def text_content(content: Any, param: str, kinds: tuple[str, ...] = ("text",)) -> None:
    """400 unless ``content`` is a string or a list of text parts (of the types in ``kinds``)."""
    if content is None or isinstance(content, str):
        return
    if not isinstance(content, list):
        raise invalid(f"{param} must be a string or an array of parts", param, "invalid_type")
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in kinds or not isinstance(part.get("text"), str):
            raise invalid(
                f"{param}[{index}] is a {kind or 'malformed'} part: only text parts are supported "
                "(the providers here take no images, audio or files)",
                f"{param}[{index}].type",
                "unsupported_content",
            )


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
        text_content(message.get("content"), f"messages[{index}].content")
        message = dict(message)
        if message["role"] == "developer":  # OpenAI's newer name for the system role
            message["role"] = "system"
        messages.append(message)
    return messages


def _max_tokens(body: dict[str, Any]) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = typed(body, name, (int,))
        if value is not None:
            if value < 1:
                raise invalid(f"{name} must be a positive integer", name)
            return value
    return None


def parse_chat_request(raw: bytes) -> ChatRequest:
    """The request in ``raw`` (a JSON body); a :class:`GatewayError` (400) says what is wrong."""
    body = load_json(raw)
    model = typed(body, "model", (str,))
    if not model:
        raise invalid("model is required", "model", "missing_field")
    messages = _messages(body.get("messages"))
    if typed(body, "n", (int,)) not in (None, 1):
        raise invalid("only n=1 is supported: the providers give one answer per request", "n", "unsupported_parameter")
    check_unsupported(body)
    stream = bool(typed(body, "stream", (bool,)))
    options = typed(body, "stream_options", (dict,)) or {}
    include_usage = bool(typed(options, "include_usage", (bool,)))
    params = {name: value for name, types in PASSTHROUGH.items() if (value := typed(body, name, types)) is not None}
    stop = params.get("stop")
    if isinstance(stop, list) and not all(isinstance(s, str) for s in stop):
        raise invalid("stop must be a string or an array of strings", "stop", "invalid_type")
    max_tokens = _max_tokens(body)
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    return ChatRequest(model, messages, stream, include_usage and stream, params)
