"""AI SDK data stream v4 (Cloudflare playground 2025)."""

from __future__ import annotations

import json

import pytest
from harvestkit.client.errors import ProtocolError, RateLimited, StreamBroken
from harvestkit.client.events import FinishReason, Reasoning, ToolCalls, Usage
from harvestkit.client.parsers.datastream import DataStreamParser
from parser_helpers import assert_split_invariant, parse_in_pieces


def parse(data: bytes, cuts: list[int] = ()) -> list:
    return parse_in_pieces(DataStreamParser, data, cuts)


def every_split(data: bytes) -> list:
    return assert_split_invariant(DataStreamParser, data)


def lines(*items: str, eol: str = "\n") -> bytes:
    return "".join(item + eol for item in items).encode()


STEP = (
    'e:{"finishReason":"stop","usage":{"promptTokens":10,"completionTokens":2},"isContinued":false}'
)
FINISH = 'd:{"finishReason":"stop","usage":{"promptTokens":10,"completionTokens":2}}'
SPEC_EXAMPLE = lines('f:{"messageId":"msg-x"}', '0:"Hello"', '0:" world"', STEP, FINISH)
END = [Usage(10, 2, 12), FinishReason("stop")]


def test_spec_example_at_every_split() -> None:
    assert every_split(SPEC_EXAMPLE) == ["Hello", " world", *END]


def test_crlf() -> None:
    assert every_split(lines('0:"a"', '0:"b"', FINISH, eol="\r\n")) == ["a", "b", *END]


def test_repeated_tokens_and_empty_text() -> None:
    assert parse(lines('0:"the"', '0:"the"', '0:""', '0:"\\n"', FINISH)) == [
        "the",
        "the",
        "\n",
        *END,
    ]


def test_every_code() -> None:
    body = lines(
        'f:{"messageId":"msg-1"}',
        'g:"Thinking"',
        'i:{"data":"opaque"}',
        'j:{"signature":"sig"}',
        '2:[{"k":1}]',
        '8:[{"note":"x"}]',
        'b:{"toolCallId":"t1","toolName":"get_weather"}',
        'c:{"toolCallId":"t1","argsTextDelta":"{\\"ci"}',
        '9:{"toolCallId":"t1","toolName":"get_weather","args":{"city":"Paris"}}',
        'a:{"toolCallId":"t1","result":{"temp":20}}',
        'h:{"sourceType":"url","id":"s","url":"https://x"}',
        'k:{"mimeType":"text/plain","data":"eA=="}',
        '0:"It is 20."',
        STEP,
        FINISH,
    )
    call = {
        "id": "t1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
    }
    assert every_split(body) == [Reasoning("Thinking"), ToolCalls([call]), "It is 20.", *END]


def test_unknown_codes_and_junk_lines_are_ignored() -> None:
    body = lines(
        'z:{"future":true}',
        "x:not json at all",
        "no colon here",
        "",
        "   ",
        '0:"ok"',
        "42:[1",
        FINISH,
    )
    assert every_split(body) == ["ok", *END]


def test_last_step_used_without_finish_message() -> None:
    other = STEP.replace('"stop"', '"length"').replace("10", "99")
    assert parse(lines('0:"a"', STEP, other)) == ["a", Usage(99, 2, 101), FinishReason("length")]


def test_usage_and_finish_once() -> None:
    events = parse(lines('0:"a"', STEP, STEP, FINISH, '0:"after"', FINISH))
    assert events == ["a", *END]


def test_unknown_usage_counts() -> None:
    # the AI SDK sends NaN (JSON null) for unknown counts: no Usage rather than a made-up one
    assert parse(
        lines('d:{"finishReason":"stop","usage":{"promptTokens":null,"completionTokens":null}}')
    ) == [FinishReason("stop")]
    assert parse(
        lines('d:{"finishReason":"stop","usage":{"promptTokens":3,"completionTokens":null}}')
    ) == [Usage(3, 0, 3), FinishReason("stop")]
    assert parse(lines('d:{"finishReason":"unknown"}')) == [FinishReason("unknown")]


def test_error_line() -> None:
    parser = DataStreamParser()
    assert parser.feed(lines('0:"Hel"')) == ["Hel"]
    with pytest.raises(StreamBroken) as info:
        parser.feed(lines('3:"Error during inference"'))
    assert type(info.value) is StreamBroken and info.value.text == "Hel"
    assert "Error during inference" in str(info.value)
    with pytest.raises(RateLimited):
        DataStreamParser().feed(lines('3:{"message":"slow down","status_code":429}'))


@pytest.mark.parametrize(
    "line", ['0:{"not":"text"}', "0:broken", "g:1", "9:[]", '9:"x"', "d:3", "e:[]", "f:{oops", "2:"]
)
def test_malformed_known_code_is_a_protocol_error(line: str) -> None:
    with pytest.raises(ProtocolError):
        DataStreamParser().feed(lines(line))


def test_truncation_detected_at_every_cut() -> None:
    full = parse(SPEC_EXAMPLE)
    step_end = SPEC_EXAMPLE.index(b"}\n", SPEC_EXAMPLE.index(b"e:")) + 1
    for cut in range(len(SPEC_EXAMPLE)):
        parser = DataStreamParser()
        events = parser.feed(SPEC_EXAMPLE[:cut])
        if cut < step_end:
            with pytest.raises(StreamBroken) as info:
                parser.close()
            assert "Hello world".startswith(info.value.text)
        else:  # a finish message cut after the finish step loses nothing
            assert events + parser.close() == full


def test_cut_text_line_after_a_step_is_still_an_error() -> None:
    parser = DataStreamParser()
    parser.feed(lines('0:"a"', STEP.replace("false", "true")) + b'0:"b')
    with pytest.raises(StreamBroken, match="cut in the middle of a line"):
        parser.close()


def test_line_bound() -> None:
    with pytest.raises(ProtocolError, match="limit"):
        DataStreamParser(max_line=1000).feed(b'0:"' + b"a" * 5000)
    assert (
        parse(b'0:"' + json.dumps("b" * 900)[1:].encode() + b"\n" + FINISH.encode())[0] == "b" * 900
    )
