"""Typed records of the wire formats: only the fields the parsers read.

Chunks are decoded with msgspec into these structs; every other field (ids, timestamps,
``obfuscation`` padding, ``tokens``, ``logprobs``...) is skipped by the decoder without
building a Python object, so the cost of a chunk does not depend on its envelope.  Fields
whose JSON type varies between servers, or that are read only once a stream, are ``Any`` and
checked by the parser.  :func:`decode` falls back to the lenient standard-library reading for
JSON that msgspec refuses but ``json`` accepts (raw control characters in strings, ``NaN``,
lone surrogates), so the two readings never disagree on what is valid.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

import msgspec

from harvestkit.client.parsers._common import loads

__all__ = [
    "AgentFrame",
    "Choice",
    "ChunkShapeError",
    "Delta",
    "OpenAIChunk",
    "TextChunk",
    "UIChunk",
    "decode",
    "decoder",
]

T = TypeVar("T")


class Delta(msgspec.Struct, gc=False):
    """``choices[].delta`` (or ``message`` in a whole completion)."""

    content: Any = None
    reasoning: Any = None
    reasoning_content: Any = None
    tool_calls: Any = None


class Choice(msgspec.Struct, gc=False):
    """One entry of ``choices``."""

    index: Any = None
    delta: Delta | None = None
    message: Delta | None = None
    finish_reason: Any = None


class OpenAIChunk(msgspec.Struct, gc=False):
    """A ``chat.completion.chunk`` (or a ``chat.completion`` body); all fields optional."""

    choices: list[Choice] | None = None
    usage: Any = None
    time_info: Any = None
    error: Any = None


class TextDelta(msgspec.Struct, gc=False):
    """A delta with text and nothing else the client reads."""

    content: str
    reasoning: None = None
    reasoning_content: None = None
    tool_calls: None = None


class TextChoice(msgspec.Struct, gc=False):
    """The first choice (index 0 or absent), not finished, with a text-only delta."""

    delta: TextDelta
    index: Literal[0] = 0
    finish_reason: None = None


class TextChunk(msgspec.Struct, gc=False):
    """The usual ``chat.completion.chunk``: one choice whose delta carries only text. Whatever
    else a chunk holds that the client reads (a finish reason, usage, reasoning, tool calls, an
    error, more choices) fails the validation, and the chunk is read as an :class:`OpenAIChunk`;
    the checks run in the decoder, not in Python, for every chunk."""

    choices: tuple[TextChoice]
    usage: None = None
    error: None = None


class UIChunk(msgspec.Struct, gc=False):
    """An AI SDK UI-message chunk ``{"type": ...}``; rare types are re-read whole."""

    type: Any = None
    delta: Any = None
    textDelta: Any = None  # noqa: N815 - the wire's spelling
    text: Any = None


class AgentFrame(msgspec.Struct, gc=False):
    """A server frame of the agents WebSocket; ``body`` is itself JSON (a UI-message chunk)."""

    type: Any = None
    id: Any = None
    body: Any = None
    done: Any = None
    error: Any = None
    replay: Any = None


class ChunkShapeError(ValueError):
    """Well-formed JSON whose shape does not fit the record; ``value`` is the plain reading."""

    def __init__(self, value: Any, cause: msgspec.ValidationError) -> None:
        super().__init__(str(cause))
        self.value = value


def decoder(record: type[T]) -> msgspec.json.Decoder[T]:
    """A reusable decoder of ``record``."""
    return msgspec.json.Decoder(record)


def decode(payload: str | bytes, typed: msgspec.json.Decoder[T]) -> T:
    """``payload`` as the decoder's record.

    Raises ``ValueError`` for malformed JSON (the message of the lenient reading) and
    :class:`ChunkShapeError`, carrying the plain value, for JSON of another shape."""
    try:
        return typed.decode(payload)
    except msgspec.ValidationError as exc:
        value = loads(payload if isinstance(payload, str) else payload.decode("utf-8", "replace"))
        raise ChunkShapeError(value, exc) from None
    except msgspec.DecodeError:
        pass
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    # msgspec refused it: JSON that only the lenient reading accepts, or none at all
    value = loads(payload if isinstance(payload, str) else payload.decode("utf-8", "replace"))
    try:
        return msgspec.convert(value, typed.type)
    except msgspec.ValidationError as exc:
        raise ChunkShapeError(value, exc) from None
