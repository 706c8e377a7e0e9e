"""The instance client on a MockTransport: request bodies, strict keywords, options refused
before sending, retries, history hygiene and the sync twin, without a network."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest
from harvestkit.cache import AuthCache
from harvestkit.client import (
    BadRequest,
    Cerebras,
    ChatOptions,
    Client,
    CloudflareSite,
    MockResponse,
    MockTransport,
    MockWebSocket,
    RateLimited,
    ServerError,
    Settings,
    StreamBroken,
    SyncClient,
    Usage,
)
from harvestkit.client.retry import RetryPolicy

KEY = "csk-mock-key-0123456789"
MODEL = "gemma-4-31b"


def sse(*chunks: dict[str, Any]) -> list[bytes]:
    return [f"data: {json.dumps(chunk)}\n\n".encode() for chunk in chunks]


def answer(text: str = "Hello there") -> list[bytes]:
    words = text.split(" ")
    deltas = [{"choices": [{"index": 0, "delta": {"content": (" " if i else "") + w}}]} for i, w in enumerate(words)]
    tail = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": len(words), "total_tokens": 3 + len(words)}}  # fmt: skip
    return sse({"choices": [{"index": 0, "delta": {"role": "assistant"}}]}, *deltas, tail)


class Cerebras200:
    """A Cerebras API: the model list, then answers (or the statuses in ``failures`` first)."""

    def __init__(self, *failures: int) -> None:
        self.failures = list(failures)
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: Any) -> MockResponse:
        if request.url.endswith("/models"):
            return MockResponse(200, {"content-type": "application/json"}, json.dumps({"data": [{"id": MODEL}]}).encode())
        self.bodies.append(request.json)
        if self.failures:
            status = self.failures.pop(0)
            return MockResponse(status, {"content-type": "application/json", "retry-after-ms": "10"},
                                json.dumps({"message": "busy", "code": "queue_exceeded" if status == 429 else None}).encode())  # fmt: skip
        return MockResponse(200, {"content-type": "text/event-stream"}, answer())


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(cache=AuthCache(tmp_path / "cache"), allow_harvest=False, backoff_base=0.001, backoff_cap=0.002)


async def test_chat_sends_the_typed_options_and_extra_body(settings: Settings) -> None:
    api = Cerebras200()
    async with Client(settings, transport=MockTransport(api)) as client:
        result = await client.chat("Hi", "cerebras", MODEL, api_key=KEY, temperature=0.2, max_tokens=9,
                                   stop=["zz"], seed=4, extra_body={"clear_thinking": True})  # fmt: skip
    assert result.text == "Hello there" and result.finish_reason == "stop" and result.usage.completion_tokens == 2
    (body,) = api.bodies
    assert body["temperature"] == 0.2 and body["max_completion_tokens"] == 9 and "max_tokens" not in body
    assert body["stop"] == ["zz"] and body["seed"] == 4 and body["clear_thinking"] is True
    assert body["messages"] == [{"role": "user", "content": "Hi"}]


async def test_history_carries_only_the_documented_message_fields(settings: Settings) -> None:
    api = Cerebras200()
    history = [
        {"role": "system", "content": "be brief", "id": "m0"},
        {"role": "user", "content": "first", "parts": [{"type": "text", "text": "first"}]},
        {"role": "assistant", "content": "one", "reasoning_content": "hmm", "reasoning": "hmm", "tool_calls": []},
        {"role": "tool", "content": "42", "tool_call_id": "call_1", "metadata": {}},
        {"role": "user", "content": "second"},
    ]
    async with Client(settings, transport=MockTransport(api)) as client:
        await client.chat(history, "cerebras", MODEL, api_key=KEY)
    assert api.bodies[0]["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "one", "tool_calls": []},
        {"role": "tool", "content": "42", "tool_call_id": "call_1"},
        {"role": "user", "content": "second"},
    ]
    assert "reasoning_content" in history[2]  # the caller's list is not changed


@pytest.mark.parametrize(
    ("call", "suggestion"),
    [
        (lambda c: c.stream("Hi", "cerebras", temprature=0.2), "temperature"),
        (lambda c: c.stream("Hi", "cerebras", max_token=5), "max_tokens"),
        (lambda c: c.chat("Hi", "cerebras", idle_timout=5), "with_options"),  # a setting, not per call
        (lambda c: c.stream("Hi", "cerebras", max_retries=5), "with_options"),
        (lambda c: c.with_options(idle_timout=5), "idle_timeout"),
        (lambda c: Client(retries=3), "max_retries"),
        (lambda c: Cerebras.stream("Hi", temprature=0.2), "temperature"),
        (lambda c: Cerebras.create_async_generator(MODEL, "Hi", idle_timout=5), "idle_timeout"),
        (lambda c: Cerebras.chat_sync("Hi", api_bse="https://x"), "api_base"),
        (lambda c: Cerebras.get_models(temperature=1), None),
    ],
)
async def test_an_unknown_keyword_is_a_type_error_naming_the_closest(settings: Settings, call, suggestion) -> None:
    transport = MockTransport(Cerebras200())
    client = Client(settings, transport=transport)
    with pytest.raises(TypeError) as caught:
        result = call(client)
        if hasattr(result, "__await__"):
            await result
    message = str(caught.value)
    assert "unexpected keyword argument" in message
    if suggestion == "with_options":
        assert "is a client setting: use Client(...) or client.with_options(...)" in message
    elif suggestion:
        assert f"did you mean {suggestion!r}" in message
    else:
        assert "did you mean" not in message
    assert transport.requests == []


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"temperature": math.nan}, "temperature"),
        ({"top_p": math.inf}, "top_p"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"x": -math.inf}}}]}, "tools[0].function.parameters.x"),
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"temperature": "hot"}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"stop": ["a", 1]}, "stop"),
    ],
)
async def test_unusable_options_are_refused_before_sending(settings: Settings, kwargs, param) -> None:
    transport = MockTransport(Cerebras200())
    async with Client(settings, transport=transport) as client:
        with pytest.raises(BadRequest) as caught:
            await client.chat("Hi", "cerebras", MODEL, api_key=KEY, **kwargs)
    assert caught.value.param == param and transport.requests == []
    assert ChatOptions(n=1, logprobs=False).api_fields() == {}


async def test_content_parts_other_than_text_are_refused(settings: Settings) -> None:
    transport = MockTransport(Cerebras200())
    image = [{"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": "data:..."}}]
    async with Client(settings, transport=transport) as client:
        with pytest.raises(BadRequest, match="'image_url' part"):
            await client.chat([{"role": "user", "content": image}], "cerebras", MODEL, api_key=KEY)
        await client.chat([{"role": "user", "content": image[:1]}], "cerebras", MODEL, api_key=KEY)
    assert len([r for r in transport.requests if r.url.endswith("/chat/completions")]) == 1


def agent_socket(request: Any) -> MockWebSocket:
    def reply(frame: str) -> list[str]:
        message = json.loads(frame)
        if message.get("type") != "cf_agent_use_chat_request":
            return []
        chunks = [{"type": "text-delta", "id": "t", "delta": "Hi"}, {"type": "finish", "finishReason": "stop"}]
        return [json.dumps({"type": "cf_agent_use_chat_response", "id": message["id"], "body": json.dumps(c),
                            "done": i == len(chunks) - 1}) for i, c in enumerate(chunks)]  # fmt: skip

    return MockWebSocket(list(GREETING), reply=reply, set_cookies=["__cf_bm=rotated; Path=/; Secure"])


ANNOUNCED = {"model": "@cf/moonshotai/kimi-k2.6", "temperature": 1, "stream": True, "system": "You are a helpful assistant.",
             "useExternalProvider": False, "externalProvider": None, "authMethod": "none", "generativeUI": False}  # fmt: skip
GREETING = (  # what the server sends on connect (spec 4.2)
    json.dumps({"type": "cf_agent_identity", "name": "Cloudflare-AI-Playground-1", "agent": "playground"}),
    json.dumps({"type": "cf_agent_state", "state": ANNOUNCED}),
    json.dumps({"type": "cf_agent_mcp_servers", "mcp": {"servers": {}, "tools": [], "prompts": [], "resources": []}}),
)


async def test_the_agent_state_sent_keeps_what_the_server_announced(settings: Settings) -> None:
    """The client's cf_agent_state replaces the server's whole state and is not echoed (spec
    4.2): it is built on the announced one, with the model, temperature and system set."""
    sockets: list[MockWebSocket] = []

    def socket(request: Any) -> MockWebSocket:
        sockets.append(agent_socket(request))
        return sockets[-1]

    transport = MockTransport(lambda r: MockResponse(404, {}, b""), websocket=socket)
    async with Client(settings, transport=transport) as client:
        messages = [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}]
        result = await client.chat(messages, "cloudflare", "@cf/zai-org/glm-5.2", cookies={"cf_clearance": "c"},
                                   generation="agents", temperature=0.5)  # fmt: skip
    assert result.text == "Hi"
    (chat,) = [s for s in sockets if any("cf_agent_use_chat_request" in frame for frame in s.sent)]
    assert json.loads(chat.sent[0]) == {"type": "cf_agent_state", "state": {
        **ANNOUNCED, "model": "@cf/zai-org/glm-5.2", "temperature": 0.5, "system": "Be brief"}}  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"generation": "agents", "tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        ({"generation": "agents", "max_tokens": 5}, "max_tokens"),
        ({"generation": "data-stream", "temperature": 0.5}, "temperature"),
        ({"temperature": 0.5, "max_tokens": 5}, "temperature"),  # no generation carries both
        ({"top_p": 0.5}, "top_p"),
        ({"extra_body": {"x": 1}}, "extra_body"),
        ({"generation": "carrier-pigeon"}, "transport"),
    ],
)
async def test_cloudflare_refuses_what_a_generation_cannot_carry(settings: Settings, kwargs, param) -> None:
    transport = MockTransport(websocket=agent_socket)
    async with Client(settings, transport=transport) as client:
        with pytest.raises(BadRequest) as caught:
            await client.chat("Hi", "cloudflare", cookies={"cf_clearance": "c"}, **kwargs)
    assert caught.value.param == param and transport.requests == []


def agents_playground() -> tuple[list[MockWebSocket], MockTransport, CloudflareSite]:
    """A playground whose HTTP API is gone (404) and whose agents sockets answer: the sockets
    opened, the transport and the site."""
    sockets: list[MockWebSocket] = []

    def socket(request: Any) -> MockWebSocket:
        sockets.append(agent_socket(request))
        return sockets[-1]

    transport = MockTransport(lambda r: MockResponse(404, {}, b""), websocket=socket)
    site = CloudflareSite(url="https://playground.test/", models_url="https://playground.test/api/models",
                          api_endpoint="https://playground.test/api/inference")  # fmt: skip
    return sockets, transport, site


async def test_cloudflare_takes_a_user_and_sends_it_nowhere(settings: Settings) -> None:
    """Chat front ends send OpenAI's ``user`` with every request: Cloudflare accepts it (it is a
    pool's sticky key), and no frame carries it."""
    sockets, transport, site = agents_playground()
    async with Client(settings, transport=transport, sites=[site]) as client:
        answer = await client.chat("Hi", "cloudflare", "@cf/x", cookies={"cf_clearance": "c"}, user="end-user-7")
    assert answer.text == "Hi"
    sent = [frame for s in sockets for frame in s.sent]
    assert any("cf_agent_use_chat_request" in frame for frame in sent)
    assert not any("end-user-7" in frame for frame in sent)
    assert not any("end-user-7" in json.dumps(r.json) for r in transport.requests)


async def test_under_auto_an_option_picks_the_generation_that_carries_it(settings: Settings) -> None:
    sockets, transport, site = agents_playground()
    async with Client(settings, transport=transport, sites=[site]) as client:
        result = await client.chat("Hi", "cloudflare", "@cf/x", cookies={"cf_clearance": "c"}, temperature=0.3)
    assert result.text == "Hi" and result.finish_reason == "stop"
    (chat,) = [s for s in sockets if any("cf_agent_use_chat_request" in frame for frame in s.sent)]
    assert json.loads(chat.sent[0])["state"]["temperature"] == 0.3
    assert not [r for r in transport.requests if r.url.endswith("/api/inference")]  # HTTP was not tried
    assert transport.requests[0].cookies == {"cf_clearance": "c"}
    assert transport.requests[-1].cookies == {"cf_clearance": "c", "__cf_bm": "rotated"}  # set by an upgrade


async def test_a_closed_client_says_so(settings: Settings) -> None:
    transport = MockTransport(Cerebras200())
    async with Client(settings, transport=transport) as client:
        pass
    assert transport.closed
    with pytest.raises(RuntimeError, match="closed"):
        client.stream("Hi", "cerebras", MODEL, api_key=KEY)


async def test_retries_then_the_answer_and_a_long_retry_after_is_the_settings_call(settings: Settings) -> None:
    api = Cerebras200(503, 429)
    async with Client(settings, transport=MockTransport(api)) as client:
        assert (await client.chat("Hi", "cerebras", MODEL, api_key=KEY)).text == "Hello there"
        api.failures = [503, 503, 503]
        with pytest.raises(ServerError):
            await client.with_options(max_retries=1).chat("Hi", "cerebras", MODEL, api_key=KEY)
    assert len(api.bodies) == 5  # 503, 429, 200; then 503 and one retry
    asked = RateLimited("slow", headers={"retry-after": "120"})
    assert asked.retry_after == 120  # not capped by the parser
    assert RetryPolicy(max_wait=300).delay(1, asked) == 120 and RetryPolicy(max_wait=60).delay(1, asked) == 60


async def test_a_stream_cut_after_text_keeps_the_text_once(settings: Settings) -> None:
    from harvestkit.client import ConnectError

    def cut(request: Any) -> MockResponse:
        if request.url.endswith("/models"):
            return MockResponse(200, {}, json.dumps({"data": [{"id": MODEL}]}).encode())
        return MockResponse(200, {"content-type": "text/event-stream"}, [*answer("one two three")[:3], ConnectError("reset")])

    async with Client(settings, transport=MockTransport(cut)) as client:
        stream = client.stream("Hi", "cerebras", MODEL, api_key=KEY)
        with pytest.raises(StreamBroken) as caught:
            async for _ in stream:
                pass
    assert stream.text == "one two" and caught.value.text == "one two"
    assert stream.error is caught.value and stream.first_event_at is not None  # what the gateway logs


async def test_the_sync_client_inside_a_running_loop(settings: Settings) -> None:
    api = Cerebras200()
    client = SyncClient(Client(settings, transport=MockTransport(api)))
    assert client.chat("Hi", "cerebras", MODEL, api_key=KEY).text == "Hello there"
    assert client.models("cerebras", api_key=KEY) == [MODEL]
    with Client(settings, transport=MockTransport(api)).sync() as again:
        assert again.chat("Hi", "cerebras", MODEL, api_key=KEY, temperature=0).usage == Usage(3, 2, 5)
    with pytest.raises(TypeError, match="temperature"):
        client.chat("Hi", "cerebras", MODEL, api_key=KEY, temprature=0)


async def test_the_seeds_generator_is_an_async_generator_that_releases_its_response(settings: Settings, monkeypatch) -> None:
    import asyncio
    import collections.abc
    import gc

    answered: list[MockResponse] = []

    def api(request: Any) -> MockResponse:
        response = Cerebras200()(request)
        answered.append(response)
        return response

    monkeypatch.setattr(Cerebras, "_transport", MockTransport(api))
    monkeypatch.setattr(Cerebras, "settings", settings)
    events = Cerebras.create_async_generator(MODEL, "Hi", api_key=KEY)
    assert isinstance(events, collections.abc.AsyncGenerator)
    assert await events.asend(None) == "Hello"
    with pytest.raises(ValueError, match="stop here"):
        await events.athrow(ValueError("stop here"))
    assert answered[-1].closed
    with pytest.raises(StopAsyncIteration):  # closed: nothing more
        await events.__anext__()

    async for event in Cerebras.create_async_generator(MODEL, "Hi", api_key=KEY):
        assert event == "Hello"
        break  # left early and dropped: the response is released once the loop runs again
    gc.collect()
    for _ in range(5):
        await asyncio.sleep(0)
    assert answered[-1].closed


async def test_batches_and_async_for_share_one_position_and_the_record() -> None:
    from harvestkit.client import ChatStream, FinishReason, Reasoning

    mixed = [Usage(1, 2, 3), "c", "d", Reasoning("r"), "e", Reasoning("s"), FinishReason("stop")]

    async def batches():
        yield ["a", "b"]
        yield []
        yield mixed

    stream = ChatStream(batches(), provider="cerebras", model=MODEL)
    assert await anext(stream) == "a"
    assert [batch async for batch in stream.batches()] == [["b"], mixed]
    assert (stream.text, stream.reasoning, stream.usage, stream.finish_reason, stream.closed) == ("abcde", "rs", Usage(1, 2, 3), "stop", True)
    assert [event async for event in stream] == []



async def test_the_record_holds_what_was_handed_out_wherever_the_caller_stops() -> None:
    """Leaving ``async for`` inside a batch, reading the record in the middle of one, going on
    with ``anext`` and a second ``async for``: ``text`` and the rest are always exactly what
    the caller received."""
    from harvestkit.client import ChatStream, FinishReason, Reasoning

    async def batches():
        yield ["a", "b", Reasoning("r"), "c"]
        yield ["d", Usage(1, 2, 3), "e", FinishReason("stop")]

    stream = ChatStream(batches(), provider="cerebras", model=MODEL)
    async for event in stream:
        assert event == "a"
        break
    assert (stream.text, stream.reasoning) == ("a", "")
    assert await anext(stream) == "b"
    assert await anext(stream) == Reasoning("r")
    assert (stream.text, stream.reasoning, stream.usage) == ("ab", "r", None)
    async for event in stream:
        if event == "d":
            break
    assert (stream.text, stream.usage, stream.finish_reason) == ("abcd", None, None)
    assert [event async for event in stream] == [Usage(1, 2, 3), "e", FinishReason("stop")]
    assert (stream.text, stream.usage, stream.finish_reason, stream.closed) == ("abcde", Usage(1, 2, 3), "stop", True)


async def test_aclose_inside_async_for_ends_the_loop_and_keeps_what_came() -> None:
    from harvestkit.client import ChatStream

    async def batches():
        yield ["a", "b", "c"]
        yield ["d"]

    stream = ChatStream(batches(), provider="cerebras", model=MODEL)
    received = []
    async for event in stream:
        received.append(event)
        if event == "b":
            await stream.aclose()
    assert received == ["a", "b"] and stream.text == "ab" and stream.closed
    assert [event async for event in stream] == [] and stream.text == "ab"
def agent_answer(*bodies: dict[str, Any], error: str | None = None):
    """A socket handler whose answer arrives in one network read: the frames of ``bodies``,
    then a ``done`` frame, or the error frame ``error`` instead."""

    def handler(request: Any) -> MockWebSocket:
        def reply(frame: str) -> list[str]:
            message = json.loads(frame)
            if message.get("type") != "cf_agent_use_chat_request":
                return []
            frames = [{"type": "cf_agent_use_chat_response", "id": message["id"], "body": json.dumps(b), "done": False}
                      for b in bodies]  # fmt: skip
            end = {"body": error, "error": True} if error is not None else {"body": "", "done": True}
            frames.append({"type": "cf_agent_use_chat_response", "id": message["id"], "done": False, **end})
            return [json.dumps(f) for f in frames]

        return MockWebSocket(list(GREETING), reply=reply)

    return handler


async def test_the_frames_of_one_network_read_are_one_batch(settings: Settings) -> None:
    words = [{"type": "text-delta", "id": "t", "delta": w} for w in ("one ", "two ", "three")]
    transport = MockTransport(lambda r: MockResponse(404, {}, b""), websocket=agent_answer(*words, {"type": "finish", "finishReason": "stop"}))
    async with Client(settings, transport=transport) as client:
        stream = client.stream("Hi", "cloudflare", "@cf/zai-org/glm-5.2", cookies={"cf_clearance": "c"}, generation="agents")
        batches = [batch async for batch in stream.batches()]
    assert [[e for e in b if isinstance(e, str)] for b in batches] == [["one ", "two ", "three"]]
    assert stream.text == "one two three" and stream.finish_reason == "stop"


async def test_an_error_frame_after_text_in_the_same_read_loses_no_text(settings: Settings) -> None:
    words = [{"type": "text-delta", "id": "t", "delta": w} for w in ("one ", "two")]
    transport = MockTransport(lambda r: MockResponse(404, {}, b""), websocket=agent_answer(*words, error="the model failed"))
    async with Client(settings, transport=transport) as client:
        stream = client.stream("Hi", "cloudflare", "@cf/zai-org/glm-5.2", cookies={"cf_clearance": "c"}, generation="agents")
        received = []
        with pytest.raises(StreamBroken, match="the model failed") as caught:
            async for event in stream:
                received.append(event)
    assert received == ["one ", "two"] and caught.value.text == "one two"


async def test_calls_that_find_no_model_list_share_one_fetch(settings: Settings) -> None:
    """Twenty chats at once on a new client: the first fetches the model list, the others wait
    for it instead of asking too (a cold gateway, or a list past its ``models_ttl``)."""
    gate, listed = asyncio.Event(), []
    api = Cerebras200()

    async def answer_after_the_gate(request: Any) -> MockResponse:
        if request.url.endswith("/models"):
            listed.append(request.url)
            await gate.wait()
        return api(request)

    async with Client(settings, transport=MockTransport(answer_after_the_gate)) as client:
        chats = [asyncio.ensure_future(client.chat(f"chat {i}", provider="cerebras", model=MODEL, api_key=KEY)) for i in range(20)]
        await asyncio.sleep(0.05)  # every chat has reached the model list by now
        assert len(listed) == 1
        gate.set()
        answers = await asyncio.gather(*chats)
    assert [answer.text for answer in answers] == ["Hello there"] * 20 and len(listed) == 1


async def test_a_chat_that_leaves_while_finding_a_new_sessions_generation_does_not_hold_the_others(settings: Settings) -> None:
    """Three chats at once on a cached session no chat has used: one asks the site, the others
    wait for what it finds; when it is cancelled before an answer, they ask for themselves."""
    from harvestkit.cache import Cookie, SessionRecord

    record = SessionRecord("cloudflare", user_agent="Mozilla/5.0", essential_cookies=["cf_clearance"],
                           cookies=[Cookie("cf_clearance", "c", "playground.test")])  # fmt: skip
    await settings.cache.put(record)
    posts: list[Any] = []
    hold = asyncio.Event()

    async def inference(request: Any) -> MockResponse:
        if request.url.endswith("/api/models"):
            return MockResponse(200, {"content-type": "application/json"}, b'{"models": ["@cf/x"]}')
        posts.append(request)
        if len(posts) == 1:
            await hold.wait()  # the first chat's request: never answered
        body = [b'0:"Hi"\n', b'd:{"finishReason":"stop","usage":{"promptTokens":1,"completionTokens":1}}\n']
        return MockResponse(200, {"content-type": "text/plain; charset=utf-8", "x-vercel-ai-data-stream": "v1"}, body)

    site = CloudflareSite(url="https://playground.test/", models_url="https://playground.test/api/models",
                          api_endpoint="https://playground.test/api/inference")  # fmt: skip
    async with Client(settings, transport=MockTransport(inference), sites=[site]) as client:
        first = asyncio.create_task(client.chat("Hi", "cloudflare", "@cf/x"))
        await asyncio.sleep(0.05)
        others = [asyncio.create_task(client.chat("Hi", "cloudflare", "@cf/x")) for _ in range(2)]
        await asyncio.sleep(0.05)
        assert len(posts) == 1  # the two others wait for the first one's answer
        first.cancel()
        results = await asyncio.wait_for(asyncio.gather(*others), 5)
    assert [r.text for r in results] == ["Hi", "Hi"] and len(posts) == 3
    assert (await settings.cache.get("cloudflare")).generation == "data-stream"
