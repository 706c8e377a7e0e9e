"""POST /v1/responses through the real openai SDK: whole and streamed, tools, store, errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import openai
import pytest
from harvestkit.client.cerebras import CerebrasSite
from harvestkit.gateway import serve

KEY = "gw-resp-key-0123456789"
TOOL = {"type": "function", "name": "lookup", "description": "look something up",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}  # fmt: skip


@pytest.fixture
async def gateway(client_env) -> AsyncIterator[str]:
    async with serve(port=0, api_key=KEY) as url:
        yield url


@pytest.fixture
def sent(monkeypatch) -> list[dict]:
    """What each Cerebras call was asked for: the messages and the request's options."""
    calls: list[dict] = []
    original = CerebrasSite.events

    def spy(self, call, credentials, model, messages):
        options = {"max_tokens": call.options.max_tokens, **call.options.api_fields()}
        calls.append({"model": model, "messages": messages, **options})
        return original(self, call, credentials, model, messages)

    monkeypatch.setattr(CerebrasSite, "events", spy)
    return calls


def sdk(url: str, key: str = KEY) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=url + "/v1", api_key=key, max_retries=0)


async def test_whole_response_with_instructions_and_usage(gateway, sent) -> None:
    async with sdk(gateway) as client:
        response = await client.responses.create(
            model="cerebras/gemma-4-31b", input="Hello responses", instructions="Be brief",
            max_output_tokens=50, temperature=0.5,
        )  # fmt: skip
    assert response.object == "response" and response.status == "completed"
    assert response.model == "cerebras/gemma-4-31b" and response.id.startswith("resp_")
    assert response.output_text.startswith("Sandbox reply to: Hello responses.")
    (message,) = response.output
    assert message.type == "message" and message.role == "assistant" and message.content[0].type == "output_text"
    assert response.usage.output_tokens > 0 and response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert response.instructions == "Be brief" and response.max_output_tokens == 50
    (sent,) = sent
    assert sent["messages"][0] == {"role": "system", "content": "Be brief"} and sent["max_tokens"] == 50


async def test_streamed_events_follow_openais_sequence(gateway) -> None:
    async with sdk(gateway) as client:
        stream = await client.responses.create(model="cerebras/gpt-oss-120b", input="weather", stream=True)
        events = [event async for event in stream]
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    # reasoning first (gpt-oss reasons), then the message: each item added, its part, deltas, done
    assert kinds[2:5] == ["response.output_item.added", "response.content_part.added", "response.reasoning_text.delta"]
    text_at = kinds.index("response.output_text.delta")
    assert kinds[text_at - 2: text_at] == ["response.output_item.added", "response.content_part.added"]
    tail = [k for k in kinds if not k.endswith(".delta")][-4:]
    assert tail == ["response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"]
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = next(e for e in events if e.type == "response.output_text.done")
    final = events[-1].response
    assert done.text == text == final.output_text and text.startswith("Sandbox reply to: weather.")
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.output[0].content[0].text.startswith("Thinking about") and final.usage.output_tokens > 0
    assert len({e.response.id for e in events if hasattr(e, "response")}) == 1


async def test_the_sdks_stream_helper_accumulates_the_events(gateway) -> None:
    async with sdk(gateway) as client:
        async with client.responses.stream(model="cerebras/gemma-4-31b", input="helper") as stream:
            async for _ in stream:
                pass
            final = await stream.get_final_response()
    assert final.output_text.startswith("Sandbox reply to: helper.")


@pytest.mark.parametrize("streamed", [False, True])
async def test_function_tool_round_trip(gateway, sent, streamed: bool) -> None:
    async with sdk(gateway) as client:
        first = await client.responses.create(model="cerebras/gpt-oss-120b", input="weather", tools=[TOOL],
                                              tool_choice="auto", stream=streamed)  # fmt: skip
        if streamed:
            events = [e async for e in first]
            kinds = [e.type for e in events]
            assert "response.function_call_arguments.delta" in kinds and "response.function_call_arguments.done" in kinds
            first = events[-1].response
        (call,) = [item for item in first.output if item.type == "function_call"]
        assert call.name == "lookup" and json.loads(call.arguments) == {"q": "weather"} and call.call_id
        # the caller runs the tool and sends back the whole conversation (stateless)
        second = await client.responses.create(
            model="cerebras/gpt-oss-120b",
            tools=[TOOL],
            tool_choice="none",  # the sandbox's model calls an offered tool whenever it may
            input=[
                {"role": "user", "content": "weather"},
                *[item.model_dump(exclude_none=True) for item in first.output],
                {"type": "function_call_output", "call_id": call.call_id, "output": '{"temp": 21}'},
            ],
        )
    assert second.status == "completed" and second.output_text
    messages = sent[-1]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[1]["tool_calls"][0]["id"] == call.call_id and messages[1]["tool_calls"][0]["function"]["name"] == "lookup"
    assert messages[2] == {"role": "tool", "tool_call_id": call.call_id, "content": '{"temp": 21}'}


async def test_previous_response_id_continues_a_stored_response(gateway, sent) -> None:
    async with sdk(gateway) as client:
        first = await client.responses.create(model="cerebras/gemma-4-31b", input="first turn", instructions="Old rules")
        second = await client.responses.create(model="cerebras/gemma-4-31b", input="second turn",
                                               previous_response_id=first.id)  # fmt: skip
        fetched = await client.responses.retrieve(first.id)
        unstored = await client.responses.create(model="cerebras/gemma-4-31b", input="private", store=False)
        with pytest.raises(openai.BadRequestError) as missing:
            await client.responses.create(model="cerebras/gemma-4-31b", input="x", previous_response_id=unstored.id)
        async with sdk(gateway, key="other") as stranger:  # a wrong key never reaches the store
            with pytest.raises(openai.AuthenticationError):
                await stranger.responses.retrieve(first.id)
        await client.responses.delete(first.id)
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(first.id)
    assert second.previous_response_id == first.id and fetched.id == first.id
    messages = sent[1]["messages"]
    # instructions are not carried over; the earlier turn and its answer are
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0]["content"] == "first turn" and messages[1]["content"] == first.output_text
    assert messages[2]["content"] == "second turn"
    assert missing.value.code == "previous_response_not_found" and missing.value.param == "previous_response_id"
    assert "store=true" in missing.value.message


async def test_json_schema_format_and_reasoning_effort_are_passed_on(gateway, sent) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    async with sdk(gateway) as client:
        await client.responses.create(
            model="cerebras/gpt-oss-120b", input="json please", reasoning={"effort": "low"},
            text={"format": {"type": "json_schema", "name": "thing", "schema": schema, "strict": True}},
        )  # fmt: skip
    assert sent[-1]["reasoning_effort"] == "low"
    assert sent[-1]["response_format"] == {"type": "json_schema", "json_schema": {"name": "thing", "schema": schema, "strict": True}}


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools[0].type", "unsupported_tool"),
        ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "http://x/y.png"}]}]},
         "input[0].content[0].type", "unsupported_content"),
        ({"background": True}, "background", "unsupported_parameter"),
        ({"include": ["message.output_text.logprobs"]}, "include", "unsupported_parameter"),
        ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0].type", "unsupported_item"),
        ({"reasoning": {"effort": "maximal"}}, "reasoning.effort", "invalid_value"),
    ],
)
async def test_what_cannot_be_honoured_is_a_400(gateway, fields: dict, param: str, code: str) -> None:
    async with sdk(gateway) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.responses.create(**{"model": "cerebras/gemma-4-31b", "input": "x", **fields})
    assert (caught.value.code, caught.value.param) == (code, param)


async def test_errors_before_output_keep_their_status_and_later_ones_are_response_failed(gateway, client_env) -> None:
    async with sdk(gateway) as client:
        with pytest.raises(openai.NotFoundError):
            await client.responses.create(model="nope", input="x", stream=True)
        client_env.sandbox.fault("cerebras.chat", truncate_after=3)
        stream = await client.responses.create(model="cerebras/gemma-4-31b", input="cut me", stream=True)
        events = [e async for e in stream]
    assert events[-1].type == "response.failed"
    assert events[-1].response.status == "failed" and events[-1].response.error.code
    assert any(e.type == "response.output_text.delta" for e in events)


async def test_raw_stream_has_event_lines(gateway) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(gateway + "/v1/responses", headers={"Authorization": f"Bearer {KEY}"},
                             json={"model": "cerebras/gemma-4-31b", "input": "raw", "stream": True}) as response:  # fmt: skip
            body = (await response.read()).decode()
    assert response.headers["content-type"].startswith("text/event-stream")
    blocks = [b for b in body.split("\n\n") if b]
    assert all(b.startswith("event: ") and "\ndata: " in b for b in blocks)
    assert blocks[0].startswith("event: response.created\n") and blocks[-1].startswith("event: response.completed\n")


async def test_cloudflare_answers_through_the_responses_api(gateway) -> None:
    async with sdk(gateway) as client:
        stream = await client.responses.create(model="qwq-32b", input="Hi cloud", stream=True)
        events = [e async for e in stream]
    final = events[-1].response
    assert events[-1].type == "response.completed" and final.model == "cloudflare/@cf/qwen/qwq-32b"
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.output_text.startswith("Sandbox reply to: Hi cloud.")


# -- the builder, without a network ---------------------------------------------------------------
def build(events: list, **request) -> tuple[list[dict], dict]:
    from harvestkit.gateway.responses_format import ResponseBuilder
    from harvestkit.gateway.responses_request import ResponsesRequest

    builder = ResponseBuilder("cerebras/m", ResponsesRequest("m", [{"role": "user", "content": "x"}], **request))
    out = builder.start()
    for event in events:
        out += builder.event(event)
    out += builder.finish()
    return out, builder.response()


def test_items_open_and_close_in_order() -> None:
    from harvestkit.client import FinishReason, Reasoning, ToolCalls, Usage

    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    events, response = build([Reasoning("th"), Reasoning("ink"), "Hel", "lo", ToolCalls([call]), Usage(3, 4, 7), FinishReason("tool_calls")])
    kinds = [e["type"] for e in events]
    assert kinds == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.content_part.added", "response.reasoning_text.delta",
        "response.reasoning_text.delta", "response.reasoning_text.done", "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added", "response.content_part.added", "response.output_text.delta",
        "response.output_text.delta", "response.output_text.done", "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.completed",
    ]  # fmt: skip
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["output_index"] for e in events if e["type"] == "response.output_item.done"] == [0, 1, 2]
    assert [item["type"] for item in response["output"]] == ["reasoning", "message", "function_call"]
    assert response["output"][0]["content"] == [{"type": "reasoning_text", "text": "think"}]
    assert response["output"][1]["content"][0]["text"] == "Hello" and response["output"][2]["call_id"] == "call_1"
    assert response["usage"]["input_tokens"] == 3 and response["usage"]["output_tokens"] == 4
    assert events[0]["response"]["status"] == "in_progress" and response["status"] == "completed"


def test_a_cut_answer_is_incomplete_and_an_empty_one_is_an_empty_message() -> None:
    from harvestkit.client import FinishReason

    events, response = build(["partial", FinishReason("length")], params={"max_tokens": 1})
    assert events[-1]["type"] == "response.incomplete"
    assert response["status"] == "incomplete" and response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["max_output_tokens"] == 1
    _, empty = build([])
    assert empty["output"][0]["type"] == "message" and empty["output"][0]["content"][0]["text"] == ""
