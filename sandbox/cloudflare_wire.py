"""The playground's four protocol generations as bytes and frames (spec 2.2 to 2.6).

Every encoder takes an optional `random.Random`: with one, each object's keys come in a random
order (the `field_order` knob), since JSON objects are unordered and a client must not care."""
from __future__ import annotations

import itertools
import json
import random
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .textgen import Reply

TEXT_GENERATION = {
    "id": "c329a1f9-323d-4e91-b2aa-582dd4188d34",
    "name": "Text Generation",
    "description": "Family of generative text models, such as large language models (LLM).",
}
EMBEDDINGS = {
    "id": "0137cdcf-162a-4108-94f2-1ca59e8c65ee",
    "name": "Text Embeddings",
    "description": "Feature extraction models transform raw data into numerical features.",
}
# (name, task, context window, reasoning)
MODELS = (
    ("@cf/meta/llama-3.3-70b-instruct-fp8-fast", TEXT_GENERATION, 24000, False),
    ("@cf/meta/llama-3.1-8b-instruct-fast", TEXT_GENERATION, 128000, False),
    ("@cf/mistralai/mistral-small-3.1-24b-instruct", TEXT_GENERATION, 128000, False),
    ("@cf/qwen/qwq-32b", TEXT_GENERATION, 24000, True),
    ("@cf/openai/gpt-oss-120b", TEXT_GENERATION, 128000, True),
    ("@cf/moonshotai/kimi-k2.6", TEXT_GENERATION, 262144, True),  # the 2026 agent's default
    ("@cf/zai-org/glm-5.2", TEXT_GENERATION, 131072, True),
    ("@cf/google/gemma-4-26b-a4b-it", TEXT_GENERATION, 131072, False),
    ("@cf/baai/bge-m3", EMBEDDINGS, 8192, False),
)
TEXT_MODELS = frozenset(name for name, task, _, _ in MODELS if task is TEXT_GENERATION)
REASONING_MODELS = frozenset(name for name, _, _, reasoning in MODELS if reasoning)


def model_objects() -> list[dict[str, Any]]:
    """The model list as `/api/models` and the getModels RPC give it."""
    return [
        {
            "id": f"{index:08x}-0000-4000-8000-{index:012x}",
            "source": 1,
            "name": name,
            "description": f"{name.rsplit('/', 1)[-1]} on Workers AI",
            "task": task,
            "created_at": "2024-02-06 18:16:27.183",
            "tags": [],
            "properties": [{"property_id": "context_window", "value": str(window)}]
            + ([{"property_id": "reasoning", "value": "true"}] if reasoning else []),
        }
        for index, (name, task, window, reasoning) in enumerate(MODELS, start=1)
    ]


compact = json.JSONEncoder(separators=(",", ":")).encode  # json.dumps's output, without an encoder a call
PERMUTATIONS = [list(itertools.permutations(range(n))) for n in range(6)]  # of small objects' keys


def reorder(value: Any, rng: random.Random | None) -> Any:
    """`value` with the keys of every object in it shuffled by `rng` (None: as it is)."""
    if rng is None:
        return value
    if isinstance(value, dict):
        items = [(key, reorder(item, rng) if isinstance(item, dict | list) else item) for key, item in value.items()]
        if len(items) >= len(PERMUTATIONS):
            rng.shuffle(items)
            return dict(items)
        orders = PERMUTATIONS[len(items)]  # one of them, uniformly: what shuffle does, at less cost
        return dict([items[index] for index in orders[int(rng.random() * len(orders))]])
    if isinstance(value, list):
        return [reorder(item, rng) for item in value]
    return value


_MARK = "\u0000harvestkit\u0000"
_encode_string = json.encoder.encode_basestring_ascii  # what `compact` does to a str


_MADE = 1 << 10  # objects a `shaped` encoder keeps per key order: a vocabulary, not a long answer's every text
_DRAWN = 1 << 10  # key orders a `shaped` encoder draws at once


def shaped(obj: dict[str, Any], field: str, rng: random.Random | None) -> Callable[[str], str]:
    """An encoder of flat objects shaped as `obj` whose string `field` varies (a frame's body, a
    chunk's delta): `compact(reorder(...))`, the same bytes and orders, each key order encoded
    once around the field, so an object costs a string escape and a join."""
    items = [(name, _MARK if name == field else item) for name, item in obj.items()]
    permutations = PERMUTATIONS[len(items)] if rng is not None else [tuple(range(len(items)))]
    orders = [tuple(compact(dict([items[i] for i in order])).split(_encode_string(_MARK))) for order in permutations]
    if len(orders) == 1:
        before, after = orders[0]
        return lambda value: before + _encode_string(value) + after
    assert rng is not None
    made: list[dict[str, str]] = [{} for _ in orders]  # per key order: a token's object is made once
    picks: Iterator[int] = iter(())  # the key orders of the next objects, drawn many at once

    def encode(value: str) -> str:
        nonlocal picks
        index = next(picks, -1)
        if index < 0:
            picks = iter(rng.choices(range(len(orders)), k=_DRAWN))
            index = next(picks)
        found = made[index].get(value)
        if found is None:
            before, after = orders[index]
            found = before + _encode_string(value) + after
            if len(made[index]) < _MADE:
                made[index][value] = found
        return found

    return encode


def ui_bodies(reply: Reply, rng: random.Random | None, shape: Callable[[dict[str, Any]], dict[str, Any]]) -> Iterator[str]:
    """A reply's UI chunks as the JSON bodies of agents frames, `compact(reorder(shape(chunk), rng))`
    each, made as they are sent; a run of deltas (most of the chunks) through `shaped`."""
    for part in _ui_parts(reply):
        if isinstance(part, Deltas):
            yield from map(shaped(shape(part.chunk("")), "delta", rng), part.deltas)
        else:
            yield compact(reorder(shape(part), rng))


def ui_count(reply: Reply) -> int:
    """How many UI chunks `reply` makes."""
    return sum(len(part.deltas) if isinstance(part, Deltas) else 1 for part in _ui_parts(reply))


def ui_chunks(reply: Reply, rng: random.Random | None = None) -> Iterator[dict[str, Any]]:
    """A reply as UI-message-stream chunks (AI SDK 5)."""
    for part in _ui_parts(reply):
        if isinstance(part, Deltas):
            for delta in part.deltas:
                yield reorder(part.chunk(delta), rng)
        else:
            yield reorder(part, rng)


@dataclass(frozen=True)
class Deltas:
    """A run of `{"type": kind, "id": id, "delta": ...}` chunks, one per delta."""

    kind: str
    id: str
    deltas: list[str]

    def chunk(self, delta: str) -> dict[str, Any]:
        return {"type": self.kind, "id": self.id, "delta": delta}


def _ui_parts(reply: Reply) -> Iterator[dict[str, Any] | Deltas]:
    yield {"type": "start", "messageId": "msg-" + secrets.token_hex(8)}
    yield {"type": "start-step"}
    if reply.reasoning:
        yield {"type": "reasoning-start", "id": "r1"}
        yield Deltas("reasoning-delta", "r1", reply.reasoning)
        yield {"type": "reasoning-end", "id": "r1"}
    yield {"type": "text-start", "id": "t1"}
    yield Deltas("text-delta", "t1", reply.tokens)
    yield {"type": "text-end", "id": "t1"}
    yield {"type": "finish-step"}
    usage = {
        "inputTokens": reply.prompt_tokens,
        "outputTokens": reply.completion_tokens,
        "totalTokens": reply.prompt_tokens + reply.completion_tokens,
    }
    yield {"type": "finish", "finishReason": reply.finish_reason, "messageMetadata": {"usage": usage}}


UI_ERROR = {"type": "error", "errorText": "Error during inference"}


def ui_sse(reply: Reply, rng: random.Random | None = None) -> Iterator[bytes]:
    """The UI message stream over HTTP: SSE events, then `[DONE]`."""
    for chunk in ui_chunks(reply, rng):
        yield b"data: " + compact(chunk).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"


def data_stream(reply: Reply, rng: random.Random | None = None) -> Iterator[bytes]:
    """The AI SDK data stream v4: one `CODE:JSON` line per part."""
    yield b'f:{"messageId":"msg-' + secrets.token_hex(8).encode() + b'"}\n'
    for thought in reply.reasoning:
        yield b"g:" + compact(thought).encode() + b"\n"
    for token in reply.tokens:
        yield b"0:" + compact(token).encode() + b"\n"
    usage = {"promptTokens": reply.prompt_tokens, "completionTokens": reply.completion_tokens}
    finish = {"finishReason": reply.finish_reason, "usage": usage}
    yield b"e:" + compact(reorder(dict(finish, isContinued=False), rng)).encode() + b"\n"
    yield b"d:" + compact(reorder(finish, rng)).encode() + b"\n"


def workers_sse(reply: Reply, rng: random.Random | None = None) -> Iterator[bytes]:
    """The oldest generation: Workers AI SSE with `response` fields, usage, then `[DONE]`."""
    for token in reply.tokens:
        chunk = reorder({"response": token, "p": "abcdefghijklmnopqrstuvwxyz0123"}, rng)
        yield b"data: " + compact(chunk).encode() + b"\n\n"
    usage = {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }
    yield b"data: " + compact(reorder({"response": "", "usage": usage}, rng)).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"


# What each generation sends for a fault's malformed line and mid-stream error.
MALFORMED = {
    "ui-stream": b'data: {"type":"text-delta","id":"t1","delta":"bro\n\n',
    "data-stream": b'0:"unterminated\n',
    "sse": b'data: {"response":"bro\n\n',
}
ERRORS = {
    "ui-stream": b"data: " + compact(UI_ERROR).encode() + b"\n\n",
    "data-stream": b'3:"Error during inference"\n',
    "sse": b'data: {"error":"Error during inference"}\n\n',
}
ENCODERS = {"ui-stream": ui_sse, "data-stream": data_stream, "sse": workers_sse}
CONTENT_TYPES = {
    "ui-stream": "text/event-stream",
    "data-stream": "text/x-unknown",
    "sse": "text/event-stream",
}


def agent_response(
    request_id: str, body: str, *, done: bool, error: bool = False, rng: random.Random | None = None
) -> str:
    """One `cf_agent_use_chat_response` frame."""
    frame: dict[str, Any] = {"type": "cf_agent_use_chat_response", "id": request_id, "body": body, "done": done}
    if error:
        frame["error"] = True
    return compact(reorder(frame, rng))


def agent_responses(request_id: str, rng: random.Random | None) -> Callable[[str], str]:
    """`agent_response(request_id, body, done=False, rng=rng)` for the many frames of one answer."""
    return shaped({"type": "cf_agent_use_chat_response", "id": request_id, "body": "", "done": False}, "body", rng)
