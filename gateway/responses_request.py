"""A ``POST /v1/responses`` body, checked and turned into chat messages and the client's keywords.

``input`` (a string or items: messages, ``function_call``, ``function_call_output``, earlier
``reasoning`` items, which are dropped as chat-completions servers do), ``instructions``,
function ``tools``, ``tool_choice``, ``max_output_tokens``, ``temperature``, ``top_p``,
``reasoning.effort``, ``text.format`` and ``parallel_tool_calls`` are honoured. What no provider
here can do (built-in tools, images and files, logprobs, background runs, server-side
conversations) is a 400 saying so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .chat_request import typed, check_unsupported, invalid, load_json, text_content

__all__ = ["ResponsesRequest", "parse_responses_request"]

ROLES = {"user": "user", "system": "system", "developer": "system", "assistant": "assistant"}
TEXT_PARTS = ("input_text", "output_text", "text", "refusal")
UNSUPPORTED: dict[str, tuple[object, ...]] = {
    "background": (False,),
    "conversation": (),
    "prompt": (),
    "top_logprobs": (0,),
    "max_tool_calls": (),
}
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
HARMLESS_INCLUDES = ("reasoning.encrypted_content",)  # asks for a field these providers do not have


@dataclass(frozen=True)
class ResponsesRequest:
    """What the gateway needs from one Responses API request."""

    model: str
    messages: list[dict[str, Any]]  # this request's input (instructions excluded)
    instructions: str | None = None
    stream: bool = False
    store: bool = True
    previous_response_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # the provider's keywords
    echo: dict[str, Any] = field(default_factory=dict)  # request fields the response object repeats


def _text(content: Any, param: str) -> str:
    """Message content (a string or text parts) as one string."""
    if isinstance(content, str):
        return content
    text_content(content, param, TEXT_PARTS)
    return "".join(part.get("text") or part.get("refusal") or "" for part in content)


def _call_output(item: dict[str, Any], param: str) -> str:
    output = item.get("output")
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return _text(output, f"{param}.output")
    raise invalid(f"{param}.output must be a string or text parts", f"{param}.output", "invalid_type")


def _required_str(item: dict[str, Any], name: str, param: str) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not value:
        raise invalid(f"{param}.{name} must be a non-empty string", f"{param}.{name}", "missing_field")
    return value


def _messages(value: Any) -> list[dict[str, Any]]:
    """``input`` as chat messages; consecutive function calls become one assistant message."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise invalid("input must be a string or a non-empty array of items", "input", "invalid_type")
    messages: list[dict[str, Any]] = []
    for index, item in enumerate(value):
        param = f"input[{index}]"
        if not isinstance(item, dict):
            raise invalid(f"{param} must be an object", param, "invalid_type")
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            role = ROLES.get(item.get("role"))  # type: ignore[arg-type]
            if role is None:
                raise invalid(f"{param}.role must be one of {', '.join(ROLES)}", f"{param}.role")
            messages.append({"role": role, "content": _text(item.get("content"), f"{param}.content")})
        elif kind == "function_call":
            call = {
                "id": _required_str(item, "call_id", param),
                "type": "function",
                "function": {"name": _required_str(item, "name", param), "arguments": str(item.get("arguments") or "")},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and last.get("tool_calls") and not last.get("content"):
                last["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            messages.append(
                {"role": "tool", "tool_call_id": _required_str(item, "call_id", param), "content": _call_output(item, param)}
            )
        elif kind == "reasoning":
            continue  # the model's earlier reasoning: not part of a chat conversation
        else:
            raise invalid(
                f"{param} is a {kind!r} item: only messages, function_call, function_call_output and reasoning "
                "items are supported",
                f"{param}.type",
                "unsupported_item",
            )
    if not any(m["role"] != "system" for m in messages):
        raise invalid("input holds no message to answer", "input", "invalid_value")
    return messages


def _tools(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise invalid("tools must be an array", "tools", "invalid_type")
    tools = []
    for index, tool in enumerate(value):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else None
            raise invalid(f"tools[{index}] is a {kind!r} tool: only function tools are supported "
                          "(no built-in tools such as web search run here)", f"tools[{index}].type",
                          "unsupported_tool")  # fmt: skip
        function = {"name": _required_str(tool, "name", f"tools[{index}]")}
        for key in ("description", "parameters", "strict"):
            if tool.get(key) is not None:
                function[key] = tool[key]
        tools.append({"type": "function", "function": function})
    return tools


def _tool_choice(value: Any) -> str | dict[str, Any]:
    if value in ("auto", "none", "required"):
        return value
    if isinstance(value, dict) and value.get("type") == "function" and isinstance(value.get("name"), str):
        return {"type": "function", "function": {"name": value["name"]}}
    raise invalid("tool_choice must be 'auto', 'none', 'required' or {'type': 'function', 'name': ...}", "tool_choice")


def _response_format(text: dict[str, Any]) -> dict[str, Any] | None:
    fmt = typed(text, "format", (dict,))
    if fmt is None or fmt.get("type") == "text":
        return None
    if fmt.get("type") == "json_object":
        return {"type": "json_object"}
    if fmt.get("type") == "json_schema":
        schema = {key: fmt[key] for key in ("name", "schema", "strict", "description") if fmt.get(key) is not None}
        return {"type": "json_schema", "json_schema": schema}
    raise invalid("text.format.type must be 'text', 'json_object' or 'json_schema'", "text.format.type")


def _includes(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, list) or any(item not in HARMLESS_INCLUDES for item in value):
        raise invalid(f"include may only hold {', '.join(HARMLESS_INCLUDES)} here (no logprobs, files or tool "
                      "results exist to include)", "include", "unsupported_parameter")  # fmt: skip


def parse_responses_request(raw: bytes) -> ResponsesRequest:
    """The request in ``raw``; a :class:`GatewayError` (400) says what is wrong."""
    body = load_json(raw)
    model = typed(body, "model", (str,))
    if not model:
        raise invalid("model is required", "model", "missing_field")
    if body.get("input") is None:
        raise invalid("input is required", "input", "missing_field")
    check_unsupported(body, UNSUPPORTED)
    _includes(body.get("include"))
    messages = _messages(body["input"])
    instructions = typed(body, "instructions", (str,))
    params: dict[str, Any] = {}
    for name in ("temperature", "top_p"):
        if (value := typed(body, name, (int, float))) is not None:
            params[name] = value
    if (tokens := typed(body, "max_output_tokens", (int,))) is not None:
        if tokens < 1:
            raise invalid("max_output_tokens must be a positive integer", "max_output_tokens")
        params["max_tokens"] = tokens
    if (tools := body.get("tools")) is not None and (converted := _tools(tools)):
        params["tools"] = converted
    if body.get("tool_choice") is not None:
        params["tool_choice"] = _tool_choice(body["tool_choice"])
    if (parallel := typed(body, "parallel_tool_calls", (bool,))) is not None:
        params["parallel_tool_calls"] = parallel
    reasoning = typed(body, "reasoning", (dict,)) or {}
    if (effort := reasoning.get("effort")) is not None:
        if effort not in EFFORTS:
            raise invalid(f"reasoning.effort must be one of {', '.join(EFFORTS)}", "reasoning.effort")
        params["reasoning_effort"] = effort
    if (fmt := _response_format(typed(body, "text", (dict,)) or {})) is not None:
        params["response_format"] = fmt
    if (user := typed(body, "user", (str,))) is not None:
        params["user"] = user
    previous = typed(body, "previous_response_id", (str,))
    store = typed(body, "store", (bool,))
    echo = {name: body.get(name) for name in ("metadata", "tools", "tool_choice", "text", "reasoning", "truncation")}
    return ResponsesRequest(
        model,
        messages,
        instructions,
        bool(typed(body, "stream", (bool,))),
        True if store is None else store,
        previous,
        params,
        echo,
    )
