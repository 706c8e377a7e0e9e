"""The agents WebSocket as it is today (spec 4.2, `agents_protocol="2026"`), and the client surviving it.

Server side: no state echo (the state is replaced), `finish` with `messageMetadata.finishReason`
and no usage, plain-text error frames then a done frame, resume/pending/replay frames, the new
default model. Client side: the text, the finish reason from the metadata, errors typed with the
server's text, replayed frames of another stream ignored, a resumption of its own stream and a
recovery midway (`cf_agent_chat_recovering`) leaving one copy of the text.
"""
from __future__ import annotations

import json

import pytest
from harvestkit.client import Cloudflare, FinishReason, ModelNotFound, StreamBroken, Usage
from harvestkit.sandbox import Sandbox
from sandbox_helpers import PLAYGROUND, cleared_session

WS_URL = "wss://playground.ai.cloudflare.com/agents/playground/Cloudflare-AI-Playground-test?_pk=1"
MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"


def chat_request(request_id: str, text: str = "Hi there") -> str:
    body = {"messages": [{"id": "m1", "role": "user", "parts": [{"type": "text", "text": text}]}], "trigger": "submit-message"}
    return json.dumps({"type": "cf_agent_use_chat_request", "id": request_id, "init": {"method": "POST", "body": json.dumps(body)}})


async def frames_until(ws, until, limit: int = 500) -> list[dict]:
    frames = []
    for _ in range(limit):
        frame = json.loads(await ws.recv_str(timeout=10))
        frames.append(frame)
        if until(frame):
            return frames
    raise AssertionError("no end frame")


# -- server side ------------------------------------------------------------------------------------
async def test_2026_greeting_state_and_finish(sandbox: Sandbox) -> None:
    sandbox.set_knobs(agents_protocol="2026")
    async with await cleared_session(sandbox) as http, http.ws_connect(WS_URL, headers={"Origin": PLAYGROUND}) as ws:
        hello = await frames_until(ws, lambda f: f["type"] == "cf_agent_stream_resume_none")
        assert [f["type"] for f in hello] == [
            "cf_agent_identity", "cf_agent_state", "cf_agent_mcp_servers", "cf_agent_stream_resume_none",
        ]
        state = hello[1]["state"]
        assert state["model"] == "@cf/moonshotai/kimi-k2.6"
        assert {"externalProvider", "authMethod", "generativeUI"} <= set(state)
        assert hello[3]["reason"] == "idle" and hello[3]["probeId"]
        await ws.send_str(json.dumps({"type": "cf_agent_state", "state": {"model": MODEL}}))  # replaces, no echo
        await ws.send_str(chat_request("c1"))
        frames = await frames_until(ws, lambda f: f.get("id") == "c1" and f.get("done"))
    assert all(f["type"] != "cf_agent_state" for f in frames)
    assert frames[0] == {"type": "cf_agent_stream_pending", "id": "c1"}
    bodies = [json.loads(f["body"]) for f in frames if f.get("type") == "cf_agent_use_chat_response" and f["body"]]
    assert bodies[-1] == {"type": "finish", "messageMetadata": {"finishReason": "stop"}}
    assert "".join(b.get("delta", "") for b in bodies if b["type"] == "text-delta").startswith("Sandbox reply to: Hi there.")


async def test_2026_errors_are_plain_text_then_done(sandbox: Sandbox) -> None:
    sandbox.set_knobs(agents_protocol="2026")
    async with await cleared_session(sandbox) as http, http.ws_connect(WS_URL, headers={"Origin": PLAYGROUND}) as ws:
        await ws.send_str(json.dumps({"type": "cf_agent_state", "state": {"model": "@cf/none"}}))
        await ws.send_str(chat_request("e1"))
        unknown = await frames_until(ws, lambda f: f.get("id") == "e1" and f.get("done"))
        await ws.send_str(json.dumps({"type": "cf_agent_state", "state": {"model": MODEL}}))
        sandbox.fault("cloudflare.chat", error_at=4)
        await ws.send_str(chat_request("e2"))
        midway = await frames_until(ws, lambda f: f.get("id") == "e2" and f.get("done"))
    assert unknown[-2:] == [
        {"type": "cf_agent_use_chat_response", "id": "e1", "error": True, "body": "Model not found: @cf/none", "done": False},
        {"type": "cf_agent_use_chat_response", "id": "e1", "body": "", "done": True},
    ]
    assert midway[-2]["error"] is True and midway[-2]["body"] == "Error during inference"
    assert midway[-1] == {"type": "cf_agent_use_chat_response", "id": "e2", "body": "", "done": True}


async def test_2026_replay_of_an_earlier_stream(sandbox: Sandbox) -> None:
    sandbox.set_knobs(agents_protocol="2026", agents_resume="replay")
    async with await cleared_session(sandbox) as http, http.ws_connect(WS_URL, headers={"Origin": PLAYGROUND}) as ws:
        frames = await frames_until(ws, lambda f: f.get("replayComplete"))
    resuming = next(f for f in frames if f["type"] == "cf_agent_stream_resuming")
    replayed = [f for f in frames if f.get("replay")]
    assert replayed and all(f["id"] == resuming["id"] for f in replayed)


def test_bad_agents_knobs_are_refused() -> None:
    from harvestkit.sandbox.state import Knobs

    with pytest.raises(ValueError, match="agents_protocol"):
        Knobs().apply({"agents_protocol": "2030"})
    with pytest.raises(ValueError, match="agents_resume"):
        Knobs().apply({"agents_resume": "maybe"})

async def test_2026_recovery_and_resumption_of_our_own_stream(sandbox: Sandbox) -> None:
    sandbox.set_knobs(agents_protocol="2026", agents_resume="own", agents_recovering=True, reply_tokens=12)
    async with await cleared_session(sandbox) as http, http.ws_connect(WS_URL, headers={"Origin": PLAYGROUND}) as ws:
        await ws.send_str(json.dumps({"type": "cf_agent_state", "state": {"model": MODEL}}))
        await ws.send_str(chat_request("o1"))
        frames = await frames_until(ws, lambda f: f.get("id") == "o1" and f.get("done"))
    kinds = [f["type"] for f in frames]
    start, resuming = kinds.index("cf_agent_chat_recovering"), kinds.index("cf_agent_stream_resuming")
    end = len(kinds) - 1 - kinds[::-1].index("cf_agent_chat_recovering")
    assert frames[start] == {"type": "cf_agent_chat_recovering", "recovering": True, "id": "o1"}
    assert frames[end] == {"type": "cf_agent_chat_recovering", "recovering": False, "id": "o1"}
    assert start < resuming < end and frames[resuming] == {"type": "cf_agent_stream_resuming", "id": "o1"}
    live_before = [f["body"] for f in frames[:start] if f["type"] == "cf_agent_use_chat_response"]
    replayed = frames[resuming + 1 : end]
    assert [f["body"] for f in replayed] == live_before and all(f["replay"] for f in replayed)
    assert replayed[-1]["replayComplete"] is True and not any(f.get("replayComplete") for f in replayed[:-1])
    live = [json.loads(f["body"]) for f in frames if f["type"] == "cf_agent_use_chat_response" and f["body"] and not f.get("replay")]
    assert [b["type"] for b in live][-1] == "finish" and sum(b["type"] == "text-start" for b in live) == 1


# -- the client against it ------------------------------------------------------------------------------
@pytest.mark.parametrize("resume", ["none", "replay"])
async def test_client_streams_from_a_2026_agent(client_env, resume: str) -> None:
    client_env.sandbox.set_knobs(agents_protocol="2026", agents_resume=resume)
    stream = Cloudflare.stream("Hi there", model=MODEL, transport="agents")
    async with stream:
        events = [e async for e in stream]
    assert stream.text.startswith("Sandbox reply to: Hi there.")
    assert "an earlier answer" not in stream.text  # a replay of another stream is not ours
    assert FinishReason("stop") in events and stream.finish_reason == "stop"
    assert not any(isinstance(e, Usage) for e in events)  # the 2026 finish carries none


@pytest.mark.parametrize(("resume", "recovering"), [("own", False), ("none", True), ("own", True)])
async def test_client_keeps_one_copy_of_a_resumed_or_recovered_stream(client_env, resume: str, recovering: bool) -> None:
    client_env.sandbox.set_knobs(agents_protocol="2026", reply_tokens=16)
    plain = await Cloudflare.chat("Hi there", model=MODEL, transport="agents")
    client_env.sandbox.set_knobs(agents_resume=resume, agents_recovering=recovering)
    stream = Cloudflare.stream("Hi there", model=MODEL, transport="agents")
    async with stream:
        events = [e async for e in stream]
    assert stream.text == plain.text and stream.text.startswith("Sandbox reply to: Hi there.")
    assert [e for e in events if isinstance(e, FinishReason)] == [FinishReason("stop")]


async def test_client_types_a_2026_error_with_the_servers_text(client_env) -> None:
    client_env.sandbox.set_knobs(agents_protocol="2026", reply_tokens=20)
    await Cloudflare.chat("warm", model=MODEL, transport="agents")
    client_env.sandbox.fault("cloudflare.chat", error_at=6)
    with pytest.raises(StreamBroken) as caught:
        await Cloudflare.chat("Hi there", model=MODEL, transport="agents")
    assert "Error during inference" in str(caught.value)
    assert caught.value.text.startswith("Sandbox reply")  # the text before the error is kept


async def test_client_reports_an_unknown_model_from_a_2026_agent(client_env) -> None:
    client_env.sandbox.set_knobs(agents_protocol="2026")
    with pytest.raises(ModelNotFound) as caught:  # from the getModels RPC's live list
        await Cloudflare.chat("Hi", model="@cf/none/nothing", transport="agents")
    assert "@cf/none/nothing" in str(caught.value) and "@cf/moonshotai/kimi-k2.6" in str(caught.value)
