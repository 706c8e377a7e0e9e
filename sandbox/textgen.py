"""Deterministic replies: the same messages always give the same tokens, so tests can assert them."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

WORDS = ["alpha", "bravo", "cedar", "delta", "ember", "fjord", "granite", "harbor", "island", "juniper", "kelp", "lantern", "meadow", "nectar", "orchard", "pebble", "quartz", "river", "saffron", "timber", "umber", "valley", "willow", "xenon", "yarrow", "zephyr", "amber", "basalt", "cobalt", "dune", "estuary", "fern", "glacier", "heather", "indigo", "jade", "kestrel", "lichen", "marble"]

_SPACED = [" " + word for word in WORDS]  # the tokens after the opening, made once


@dataclass(frozen=True)
class Reply:
    """What the sandbox answers to one conversation."""

    reasoning: list[str]
    tokens: list[str]
    finish_reason: str  # "stop" or "length"
    prompt_tokens: int

    @property
    def text(self) -> str:
        return "".join(self.tokens)

    @property
    def completion_tokens(self) -> int:
        return len(self.reasoning) + len(self.tokens)


def message_text(content: Any) -> str:
    """The text of a message content: a string, or a list of parts with text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict)
        )
    return ""


def _words(text: str, limit: int) -> list[str]:
    return text.split()[:limit]


def make_reply(
    messages: list[dict[str, Any]],
    *,
    system: str | None = None,
    max_tokens: int | None = None,
    reply_tokens: int | None = None,
    reasoning: bool = False,
) -> Reply:
    """The reply to `messages` (OpenAI-shaped, or with `parts`).

    The text starts with "Sandbox reply to: <the last user message's first words>.", notes a system
    prompt when there is one, then continues with words drawn from a hash of the conversation. The
    word after the opening is repeated once on purpose ("the the"): a client must yield a token equal
    to the one before it. `reply_tokens` fixes the natural length; `max_tokens` cuts it ("length").
    """
    prompt = ""
    for message in messages:
        if message.get("role") == "system" and system is None:
            system = message_text(message.get("content")) or message_text(message.get("parts"))
        if message.get("role") == "user":
            prompt = message_text(message.get("content")) or message_text(message.get("parts"))
    opening = ["Sandbox", " reply", " to:"] + [" " + w for w in _words(prompt, 8)]
    opening[-1] += "."
    if system:
        opening += [" (system:"] + [" " + w for w in _words(system, 4)] + [")"]
    opening += [" the", " the"]
    digest = hashlib.sha256(repr((prompt, system, len(messages))).encode()).digest()
    natural = reply_tokens if reply_tokens is not None else len(opening) + 8 + digest[0] % 16
    tokens = opening[:natural]
    seed = digest
    while len(tokens) < natural:
        seed = hashlib.sha256(seed).digest()
        tokens += [_SPACED[b % len(_SPACED)] for b in seed[: natural - len(tokens)]]
    finish = "stop"
    if max_tokens is not None and max_tokens < len(tokens):
        tokens, finish = tokens[: max(max_tokens, 0)], "length"
    thoughts = ["Thinking", " about:"] + [" " + w for w in _words(prompt, 6)] if reasoning else []
    prompt_tokens = sum(
        4 + len((message_text(m.get("content")) or message_text(m.get("parts"))).split())
        for m in messages
    )
    return Reply(
        reasoning=thoughts,
        tokens=tokens,
        finish_reason=finish,
        prompt_tokens=prompt_tokens + (len(system.split()) if system else 0),
    )
