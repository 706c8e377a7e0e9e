"""Feeding a stream parser in pieces, shared by the parser tests."""
from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any


def parse_in_pieces(make_parser: Callable[[], Any], data: bytes, cuts: Iterable[int] = ()) -> list:
    """Feed `data` cut at `cuts`, then close; all the events."""
    parser, out, prev = make_parser(), [], 0
    for cut in [*sorted(cuts), len(data)]:
        out += parser.feed(data[prev:cut])
        prev = cut
    return out + parser.close()


def assert_split_invariant(make_parser: Callable[[], Any], data: bytes, *, random_samples: int = 0) -> list:
    """Every single cut gives the events of the whole; then either every byte apart
    (random_samples == 0) or that many random 8-cut splits. Returns the events."""
    whole = parse_in_pieces(make_parser, data)
    for cut in range(len(data) + 1):
        assert parse_in_pieces(make_parser, data, [cut]) == whole, cut
    if random_samples:
        rng = random.Random(len(data))
        for _ in range(random_samples):
            assert parse_in_pieces(make_parser, data, rng.sample(range(len(data)), 8)) == whole
    else:
        assert parse_in_pieces(make_parser, data, list(range(len(data)))) == whole
    return whole
