"""One Cerebras answer as the API shapes it: whole, or as stream chunks (spec 1.2 and 4.1)."""
from __future__ import annotations

import json
import random
import secrets
import time
from collections.abc import Iterator
from typing import Any

from . import cerebras_strict as strict
from .textgen import Reply

__all__ = ["Completion"]

_MARK = "\u0000content\u0000"
_IDS = "\u0000tokens\u0000"
_encode_string = json.encoder.encode_basestring_ascii  # what json.dumps does to a str
_VARIANTS = 61  # envelopes a varying stream cycles through (a prime: no period lines up with one)
_PAD = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class Completion:
    """One answer, as Cerebras shapes it whole or as stream chunks.

    ``envelope="varying"`` (spec 4.1: never assume two chunks share an envelope) gives every
    chunk its own: random ``obfuscation`` padding, ``tokens`` ids beside the content, keys in
    another order, ``system_fingerprint``, ``service_tier`` and ``logprobs`` present or absent.
    ``"identical"`` repeats one envelope byte for byte.  ``usage_chunk`` sends the usage and
    ``time_info`` in a chunk of their own with ``choices: []`` after the finish chunk.
    ``fragmented`` sends a tool call in pieces keyed by index."""

    def __init__(
        self,
        model: str,
        reply: Reply,
        call: dict[str, Any] | None,
        *,
        envelope: str = "varying",
        usage_chunk: bool = False,
        fragmented: bool = False,
    ) -> None:
        self.id = "chatcmpl-" + secrets.token_hex(12)
        self.fragmented = fragmented  # the tool call in pieces keyed by index
        self.created = int(time.time())
        self.model, self.reply, self.call = model, reply, call
        self.started = time.time()
        self.varying = envelope == "varying"
        self.usage_chunk = usage_chunk
        self._rng = random.Random(self.id)

    def usage(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.reply.prompt_tokens,
            "completion_tokens": self.reply.completion_tokens,
            "total_tokens": self.reply.prompt_tokens + self.reply.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
        }

    def time_info(self) -> dict[str, float]:
        total = max(time.time() - self.started, 1e-4)
        return {
            "queue_time": 0.0001,
            "prompt_time": round(total * 0.2, 6),
            "completion_time": round(total * 0.8, 6),
            "total_time": round(total, 6),
            "created": self.started,
        }

    def finish_reason(self) -> str:
        return "tool_calls" if self.call else self.reply.finish_reason

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        chunk = {
            "id": self.id,
            "choices": [{"delta": delta, "finish_reason": finish, "index": 0}],
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_sandbox",
            "object": "chat.completion.chunk",
        }
        return self._vary(chunk) if self.varying else chunk

    def _vary(self, chunk: dict[str, Any]) -> dict[str, Any]:
        """``chunk`` with this chunk's padding, optional fields and key order."""
        rng = self._rng
        choice = chunk["choices"][0]
        if rng.random() < 0.5:
            choice["logprobs"] = None
        if rng.random() < 0.3:
            del chunk["system_fingerprint"]
        if rng.random() < 0.3:
            chunk["service_tier"] = "default"
        chunk["obfuscation"] = "".join(rng.choices(_PAD, k=rng.randrange(1, 24)))
        for part in (chunk, choice):
            items = list(part.items())
            rng.shuffle(items)
            part.clear()
            part.update(items)
        return chunk

    def _opening(self) -> Iterator[dict[str, Any]]:
        yield self._chunk({"role": "assistant"})
        for thought in self.reply.reasoning:
            yield self._chunk({"reasoning": thought})
        if self.call and self.fragmented:
            for delta in strict.tool_call_deltas(self.call):
                yield self._chunk(delta)
        elif self.call:
            yield self._chunk({"tool_calls": [dict(self.call, index=0)]})

    def _closing(self) -> Iterator[dict[str, Any]]:
        yield self._chunk({})
        last = self._chunk({}, self.finish_reason())
        if not self.usage_chunk:
            last["usage"], last["time_info"] = self.usage(), self.time_info()
            yield last
            return
        yield last
        tail = self._chunk({})
        tail["choices"] = []
        tail["usage"], tail["time_info"] = self.usage(), self.time_info()
        yield tail

    def _tokens(self) -> list[str]:
        return [] if self.call else self.reply.tokens

    def chunks(self) -> Iterator[dict[str, Any]]:
        yield from self._opening()
        ids: dict[str, int] = {}
        for token in self._tokens():
            delta: dict[str, Any] = {"content": token}
            if self.varying:
                delta["tokens"] = [ids.setdefault(token, 1000 + len(ids))]
            yield self._chunk(delta)
        yield from self._closing()

    def _envelopes(self) -> list[tuple[str, str, str, bool]]:
        """Pre-encoded content chunks: (before, between, after, ids first) around the content
        string and the token ids; one when identical, ``_VARIANTS`` to cycle through when not."""
        found = []
        for _ in range(_VARIANTS if self.varying else 1):
            delta: dict[str, Any] = {"content": _MARK}
            if self.varying:
                delta["tokens"] = _IDS
                if self._rng.random() < 0.5:
                    delta = {"tokens": _IDS, "content": _MARK}
            text = _compact(self._chunk(delta))
            content, ids = text.index(json.dumps(_MARK)), text.find(json.dumps(_IDS))
            if ids < 0:
                found.append((text[:content], "", text[content + len(json.dumps(_MARK)) :], False))
                continue
            first, second = sorted([(content, _MARK), (ids, _IDS)])
            a = text[: first[0]]
            b = text[first[0] + len(json.dumps(first[1])) : second[0]]
            c = text[second[0] + len(json.dumps(second[1])) :]
            found.append((a, b, c, first[1] == _IDS))
        return found

    def sse(self, batch: int = 1) -> Iterator[bytes]:
        """The stream as SSE events, byte for byte ``data: json.dumps(chunk)``.

        Content chunks are pre-encoded per envelope variant and token (no dict and no JSON
        encoding per token), so a long stream costs the server little whether its envelopes
        repeat or vary.  ``batch`` > 1 joins that many content chunks into one item (for an
        unpaced stream without faults, whose items are not counted one by one)."""
        for chunk in self._opening():
            yield b"data: " + _compact(chunk).encode() + b"\n\n"
        tables: list[dict[str, bytes]] = [{} for _ in range(_VARIANTS if self.varying else 1)]
        envelopes = self._envelopes()
        ids: dict[str, bytes] = {}  # token -> its ids array: a tokenizer's ids are fixed

        def encode(variant: int, token: str) -> bytes:
            before, between, after, ids_first = envelopes[variant]
            text, array = _encode_string(token), ids.setdefault(token, "[%d]" % (1000 + len(ids)))
            middle = (array + between + text) if ids_first else (text + between + array) if between else text
            tables[variant][token] = data = ("data: " + before + middle + after + "\n\n").encode()
            return data

        count, tokens = len(tables), self._tokens()
        for start in range(0, len(tokens), batch):  # a comprehension per item: no call per token
            yield b"".join([
                tables[index % count].get(token) or encode(index % count, token)
                for index, token in enumerate(tokens[start : start + batch], start)
            ])  # fmt: skip
        for chunk in self._closing():
            yield b"data: " + _compact(chunk).encode() + b"\n\n"

    def whole(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": None if self.call else self.reply.text}
        if self.reply.reasoning:
            message["reasoning"] = "".join(self.reply.reasoning)
        if self.call:
            message["tool_calls"] = [self.call]
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_sandbox",
            "choices": [{"index": 0, "finish_reason": self.finish_reason(), "message": message}],
            "usage": self.usage(),
            "time_info": self.time_info(),
        }
