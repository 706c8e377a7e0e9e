"""SSEDecoder and the line buffer under it."""

from __future__ import annotations

import pytest
from harvestkit.cache.errors import HarvestkitError
from harvestkit.client.errors import ProtocolError
from harvestkit.client.parsers._common import TextBuffer
from harvestkit.client.parsers.sse import SSEDecoder
from hypothesis import given, settings
from hypothesis import strategies as st


def decode(data: bytes, cuts: list[int] = (), **kwargs) -> list[str]:
    decoder, out, prev = SSEDecoder(**kwargs), [], 0
    for cut in [*sorted(cuts), len(data)]:
        out += decoder.feed(data[prev:cut])
        prev = cut
    return out + decoder.close()


def every_split(data: bytes) -> list[str]:
    """Decode ``data`` whole, split at every offset and byte by byte; all must agree."""
    whole = decode(data)
    for cut in range(len(data) + 1):
        assert decode(data, [cut]) == whole, cut
    assert decode(data, list(range(len(data)))) == whole
    return whole


CASES = [
    (b"data: a\n\ndata: b\n\n", ["a", "b"]),
    (b"data:a\n\ndata:  b\n\n", ["a", " b"]),  # one space is dropped, not two
    (b"data: a\r\n\r\ndata: b\r\n\r\n", ["a", "b"]),
    (b"data: a\r\rdata: b\r\r", ["a", "b"]),
    (b"data: a\r\ndata: b\r\n\r\n", ["a\nb"]),
    (b"data: one\ndata: two\ndata:\n\n", ["one\ntwo\n"]),
    (b": comment\n:\ndata: x\n: another\n\n", ["x"]),
    (b"event: message\nid: 7\nretry: 1000\nfoo: bar\nnocolon\ndata: x\n\n", ["x"]),
    (b"event: ping\n\nid: 3\n\n\n\n", []),
    (b"data: last without blank line", ["last without blank line"]),
    (b"data: last\n", ["last"]),
    (b"data: last\r", ["last"]),
    (b"\xef\xbb\xbfdata: bom\n\n", ["bom"]),
    (b"data: caf\xc3\xa9 \xe2\x82\xac\n\n", ["caf\u00e9 \u20ac"]),
    (b"data: bad \xff utf8\n\n", ["bad \ufffd utf8"]),
    (b"data\n\ndata: [DONE]\n\n", ["", "[DONE]"]),
    (b"\n\n\ndata: x\n\n\n\n\ndata: y\n\n", ["x", "y"]),
    (b'data: {"a": 1}\n\ndata: {"a": 2}\n\n', ['{"a": 1}', '{"a": 2}']),
]


@pytest.mark.parametrize("data, expected", CASES)
def test_cases_at_every_split(data: bytes, expected: list[str]) -> None:
    assert every_split(data) == expected


def test_crlf_split_across_feeds_is_one_line_break() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\ndata: b\r") == []
    assert decoder.feed(b"\n\r") == []
    assert decoder.feed(b"\n") == ["a\nb"]
    assert decoder.close() == []


def test_lone_cr_at_end_of_feed_is_resolved_by_the_next_feed() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r\r") == []  # the second CR could be half of a CRLF
    assert decoder.feed(b"data: b\r\r") == ["a"]
    assert decoder.close() == ["b"]


def test_events_are_returned_as_soon_as_complete() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: 1\n\ndata: 2") == ["1"]
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\n") == ["2"]


def test_repeated_identical_payloads_are_kept() -> None:
    assert decode(b"data: the\n\ndata: the\n\n") == ["the", "the"]


def test_long_line_is_bounded_without_buffering_it() -> None:
    decoder = SSEDecoder(max_line=1 << 20)
    piece = b"x" * 16384
    with pytest.raises(ProtocolError, match="limit"):
        for i in range(10 * 64):  # 10 MiB in 16 KiB pieces, no line break
            decoder.feed(b"data: " + piece if i == 0 else piece)
    assert i < 70  # raised just past 1 MiB


def test_long_line_in_one_feed_is_bounded() -> None:
    with pytest.raises(ProtocolError):
        SSEDecoder().feed(b"data: " + b"y" * (10 << 20) + b"\n\n")
    with pytest.raises(ProtocolError):
        SSEDecoder(max_line=100).feed(b"data: ok\n\ndata: " + b"y" * 200 + b"\n\ndata: ok\n\n")


def test_event_data_is_bounded_across_lines() -> None:
    with pytest.raises(ProtocolError):
        SSEDecoder(max_line=100).feed(b"data: " + b"z" * 60 + b"\ndata: " + b"z" * 60 + b"\n\n")


def test_bound_is_configurable_and_exact_enough() -> None:
    assert decode(b"data: " + b"a" * 90 + b"\n\n", max_line=100) == ["a" * 90]


def test_text_buffer_cr_handling() -> None:
    buf = TextBuffer()
    assert buf.feed(b"a\r") == ""
    assert buf.feed(b"b\r\n") == "a\nb\n"
    assert buf.feed(b"c") == ""
    assert buf.close() == "c"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                b"data: x",
                b"data:y",
                b":c",
                b"event: e",
                b"id: 1",
                b"data: ",
                b"retry: 5",
                b"",
                b"data: \xc3\xa9",
                b"zzz",
            ]
        ),
        max_size=12,
    ),
    st.sampled_from([b"\n", b"\r\n", b"\r"]),
    st.data(),
)
def test_line_endings_and_splits_do_not_matter(lines: list[bytes], eol: bytes, data) -> None:
    reference = decode(b"".join(line + b"\n" for line in lines) + b"\n")
    body = b"".join(line + eol for line in lines) + eol
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=6))
    assert decode(body, cuts) == reference


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=8))
def test_arbitrary_bytes(body: bytes, cuts: list[int]) -> None:
    try:
        result = decode(body, [c for c in cuts if c <= len(body)], max_line=64)
    except HarvestkitError:
        return
    assert all(isinstance(p, str) for p in result)
