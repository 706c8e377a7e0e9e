"""The agents WebSocket frames (Cloudflare playground, current generation)."""

from __future__ import annotations

import json

import pytest
from harvestkit.client.errors import ProtocolError, ServerError, StreamBroken
from harvestkit.client.events import FinishReason, Reasoning, ToolCalls, Usage
from harvestkit.client.parsers.agents import (
    AgentChatParser,
    RpcReply,
    cancel_frame,
    chat_request_frame,
    parse_rpc_reply,
    parse_state,
    rpc_frame,
    state_frame,
    ui_messages,
)


def response(body: dict | str, done: bool = False, rid: str = "req_1", **extra) -> str:
    return json.dumps(
        {
            "type": "cf_agent_use_chat_response",
            "id": rid,
            "body": body if isinstance(body, str) else json.dumps(body),
            "done": done,
            **extra,
        }
    )


def test_chat_request_frame() -> None:
    frame = json.loads(
        chat_request_frame(
            "req_1", [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}]
        )
    )
    assert frame["type"] == "cf_agent_use_chat_request" and frame["id"] == "req_1"
    assert frame["init"]["method"] == "POST"
    body = json.loads(frame["init"]["body"])
    assert body["trigger"] == "submit-message"
    assert [(m["role"], m["parts"]) for m in body["messages"]] == [
        ("system", [{"type": "text", "text": "Be brief"}]),
        ("user", [{"type": "text", "text": "Hi"}]),
    ]
    ids = [m["id"] for m in body["messages"]]
    assert all(ids) and len(set(ids)) == 2


def test_ui_messages_keep_ids_parts_and_text_of_content_parts() -> None:
    messages = ui_messages(
        [
            {"id": "m1", "role": "user", "parts": [{"type": "text", "text": "a"}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "b"},
                    {"type": "image_url", "image_url": {}},
                    {"type": "text", "text": "c"},
                ],
            },
        ]
    )
    assert messages[0] == {"id": "m1", "role": "user", "parts": [{"type": "text", "text": "a"}]}
    assert messages[1]["parts"] == [{"type": "text", "text": "bc"}]


def test_extra_body_fields() -> None:
    frame = json.loads(chat_request_frame("r", [{"role": "user", "content": "x"}], id="chat-1"))
    assert json.loads(frame["init"]["body"])["id"] == "chat-1"


def test_state_cancel_rpc_frames() -> None:
    assert json.loads(state_frame("@cf/meta/llama-3.3-70b-instruct-fp8-fast", system="S")) == {
        "type": "cf_agent_state",
        "state": {
            "model": "@cf/meta/llama-3.3-70b-instruct-fp8-fast",
            "temperature": 1,
            "stream": True,
            "system": "S",
            "useExternalProvider": False,
        },
    }
    assert json.loads(cancel_frame("req_1")) == {
        "type": "cf_agent_chat_request_cancel",
        "id": "req_1",
    }
    assert json.loads(rpc_frame("r1")) == {
        "type": "rpc",
        "id": "r1",
        "method": "getModels",
        "args": [],
    }


CONVERSATION = [
    json.dumps(
        {"type": "cf_agent_identity", "name": "Cloudflare-AI-Playground-1", "agent": "playground"}
    ),
    json.dumps({"type": "cf_agent_state", "state": {"model": "@cf/x"}}),
    "not json at all",
    response({"type": "start"}),
    response({"type": "reasoning-delta", "id": "r", "delta": "Think"}),
    response({"type": "text-delta", "id": "t", "delta": "the"}),
    response({"type": "text-delta", "id": "t", "delta": "the"}, rid="someone-else"),
    response({"type": "text-delta", "id": "t", "delta": "the"}),
    response({"type": "tool-input-available", "toolCallId": "c", "toolName": "f", "input": {}}),
    json.dumps({"type": "cf_agent_chat_messages", "messages": []}),
    response(
        {
            "type": "finish",
            "finishReason": "stop",
            "messageMetadata": {"usage": {"inputTokens": 3, "outputTokens": 2}},
        }
    ),
    response("", done=True),
]
EXPECTED = [
    Reasoning("Think"),
    "the",
    "the",
    ToolCalls([{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]),
    Usage(3, 2, 5),
    FinishReason("stop"),
]


def test_conversation() -> None:
    parser = AgentChatParser("req_1")
    events = [e for frame in CONVERSATION for e in parser.feed(frame)]
    assert events + parser.close() == EXPECTED
    assert parser.feed(response({"type": "text-delta", "delta": "late"})) == []


def test_frames_as_bytes() -> None:
    parser = AgentChatParser("req_1")
    events = [e for frame in CONVERSATION for e in parser.feed(frame.encode())]
    assert events + parser.close() == EXPECTED


def test_done_without_finish_chunk() -> None:
    parser = AgentChatParser("req_1")
    assert parser.feed(response({"type": "text-delta", "delta": "x"})) == ["x"]
    assert parser.feed(response("", done=True)) == []
    assert parser.close() == []


def test_truncation_at_every_frame() -> None:
    for cut in range(len(CONVERSATION)):
        parser = AgentChatParser("req_1")
        for frame in CONVERSATION[:cut]:
            parser.feed(frame)
        with pytest.raises(StreamBroken) as info:
            parser.close()
        assert "thethe".startswith(info.value.text)


@pytest.mark.parametrize(
    "frame, cls",
    [
        (response("Model is overloaded", done=True, error=True), StreamBroken),
        (
            response({"error": {"message": "upstream", "status_code": 502}}, done=True, error=True),
            ServerError,
        ),
        (response("", done=True, error={"message": "boom", "status": 500}), ServerError),
        (response({"type": "error", "errorText": "Workers AI failed"}), StreamBroken),
    ],
)
def test_error_frames(frame: str, cls: type) -> None:
    parser = AgentChatParser("req_1")
    parser.feed(response({"type": "text-delta", "delta": "Hi"}))
    with pytest.raises(cls) as info:
        parser.feed(frame)
    assert type(info.value) is cls
    if cls is StreamBroken:
        assert info.value.text == "Hi"


def test_malformed_body_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        AgentChatParser("req_1").feed(response("{not json"))


MODEL = {
    "id": "7f180530",
    "source": 2,
    "name": "@cf/meta/llama-3.3-70b-instruct-fp8-fast",
    "task": {"id": "t", "name": "Text Generation"},
}


def test_rpc_reply() -> None:
    frame = json.dumps(
        {"type": "rpc", "id": "r1", "success": True, "result": [MODEL], "done": True}
    )
    assert parse_rpc_reply(frame, "r1") == RpcReply([MODEL], True)
    assert parse_rpc_reply(frame, "r2") is None
    assert parse_rpc_reply(response({"type": "start"}), "r1") is None
    assert parse_rpc_reply(b"\xff garbage", "r1") is None
    partial = json.dumps({"type": "rpc", "id": "r1", "success": True, "result": 1, "done": False})
    assert parse_rpc_reply(partial, "r1") == RpcReply(1, False)
    with_null_error = json.dumps(
        {"type": "rpc", "id": "r1", "success": True, "result": [], "error": None}
    )
    assert parse_rpc_reply(with_null_error, "r1") == RpcReply([], True)


def test_rpc_failure() -> None:
    frame = json.dumps(
        {"type": "rpc", "id": "r1", "success": False, "error": "Method getModels not found"}
    )
    with pytest.raises(ProtocolError, match="getModels not found"):
        parse_rpc_reply(frame, "r1")


# -- spec 4.2: the agents WebSocket today ------------------------------------------------------

ON_CONNECT = [
    json.dumps({"type": "cf_agent_identity", "name": "Cloudflare-AI-Playground-1", "agent": "playground"}),
    json.dumps(
        {
            "type": "cf_agent_state",
            "state": {"model": "@cf/moonshotai/kimi-k2.6", "externalProvider": None, "authMethod": None, "generativeUI": False},
        }
    ),
    json.dumps({"type": "cf_agent_mcp_servers", "mcp": {"servers": {}, "tools": [], "prompts": [], "resources": []}}),
]
NEWER = [
    json.dumps({"type": "cf_agent_stream_resume_none", "reason": "idle", "probeId": "p1"}),
    json.dumps({"type": "cf_agent_stream_resuming", "id": "req_other"}),
    json.dumps({"type": "cf_agent_stream_pending", "id": "req_1"}),
    json.dumps({"type": "cf_agent_chat_recovering", "id": "req_1"}),
    json.dumps({"type": "cf_agent_stream_resume_none", "reason": "continuation-owned", "probeId": "p2"}),
    json.dumps({"done": True, "id": "r9", "result": [], "success": True, "type": "rpc"}),
    json.dumps({"type": "some_future_frame", "id": "req_1", "body": "{\"type\":\"text-delta\",\"delta\":\"no\"}"}),
]


def test_todays_conversation_finish_in_message_metadata_without_usage() -> None:
    frames = [
        *ON_CONNECT,
        response({"type": "start", "messageId": "m1"}),
        *NEWER[:3],
        response({"type": "start-step"}),
        response({"type": "text-start", "id": "t1"}),
        response({"type": "text-delta", "id": "t1", "delta": "Hel"}),
        *NEWER[3:],
        response({"type": "text-delta", "id": "t1", "delta": "lo"}),
        response({"type": "text-end", "id": "t1"}),
        response({"type": "finish-step"}),
        response({"type": "finish", "messageMetadata": {"finishReason": "stop"}}),
        response("", done=True),
    ]
    parser = AgentChatParser("req_1")
    events = [e for frame in frames for e in parser.feed(frame)]
    assert events + parser.close() == ["Hel", "lo", FinishReason("stop")]
    assert parser.done


@pytest.mark.parametrize("reason, expected", [("tool-calls", "tool_calls"), ("content-filter", "content_filter")])
def test_hyphenated_finish_reasons_get_openai_spelling(reason: str, expected: str) -> None:
    parser = AgentChatParser("req_1")
    assert parser.feed(response({"type": "finish", "finishReason": reason}, done=True)) == [FinishReason(expected)]


def test_error_frame_with_plain_text_then_done() -> None:
    """Spec 4.2: ``error: true`` with the server's plain text, then ``{"body": "", "done": true}``."""
    parser = AgentChatParser("req_1")
    assert parser.feed(response({"type": "text-delta", "delta": "Par"})) == ["Par"]
    with pytest.raises(StreamBroken) as info:
        parser.feed(response("Error: AiError: 3040: Capacity temporarily exceeded", error=True))
    assert "Error: AiError: 3040: Capacity temporarily exceeded" in str(info.value)
    assert info.value.text == "Par" and info.value.provider == "cloudflare"
    assert parser.done
    assert parser.feed(response("", done=True)) == []
    assert parser.close() == []


def test_replayed_frames_are_not_doubled_and_new_ones_are_used() -> None:
    """A resumed stream replays the response from its start (``replay: true``): chunks already
    seen live are skipped, the rest of the replay and what follows it count."""
    chunks = [{"type": "text-delta", "id": "t", "delta": word} for word in ["a", "b", "c", "d"]]
    parser = AgentChatParser("req_1")
    events = parser.feed(response(chunks[0])) + parser.feed(response(chunks[1]))
    events += parser.feed(json.dumps({"type": "cf_agent_stream_resuming", "id": "req_1"}))
    for chunk in chunks[:3]:
        events += parser.feed(response(chunk, replay=True))
    events += parser.feed(response("", replay=True, replayComplete=True))
    events += parser.feed(response(chunks[3]))
    events += parser.feed(response({"type": "finish", "messageMetadata": {"finishReason": "stop"}}, done=True))
    assert events == ["a", "b", "c", "d", FinishReason("stop")]
    assert parser.text_so_far == "abcd"


def test_frame_with_extra_fields_and_reordered_keys() -> None:
    frame = json.dumps(
        {"done": False, "body": json.dumps({"delta": "x", "providerMetadata": {"k": 1}, "type": "text-delta", "id": "t"}),
         "id": "req_1", "type": "cf_agent_use_chat_response", "extra": [1, 2]}
    )  # fmt: skip
    assert AgentChatParser("req_1").feed(frame) == ["x"]


def test_state_frame_keeps_the_announced_state() -> None:
    """The client's state replaces the server's whole state: the keys it announced survive."""
    announced = parse_state(ON_CONNECT[1])
    assert announced == {"model": "@cf/moonshotai/kimi-k2.6", "externalProvider": None, "authMethod": None, "generativeUI": False}
    assert parse_state(ON_CONNECT[0]) is None and parse_state(b"\xff") is None
    sent = json.loads(state_frame("@cf/zai-org/glm-5.2", system="S", base=announced))["state"]
    assert sent == {
        "model": "@cf/zai-org/glm-5.2", "externalProvider": None, "authMethod": None, "generativeUI": False,
        "temperature": 1, "stream": True, "system": "S", "useExternalProvider": False,
    }  # fmt: skip
