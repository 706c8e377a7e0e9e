"""The Cloudflare provider against the sandbox: every generation, fallback, challenge recovery."""

from __future__ import annotations

import asyncio

import pytest
from client_helpers import eventually
from harvestkit.cache import SessionRecord
from harvestkit.client import (
    BadRequest,
    Cloudflare,
    FinishReason,
    MissingCredentials,
    ProtocolError,
    Reasoning,
    StreamBroken,
    Usage,
)
from harvestkit.harvester.errors import BrowserNotFound

PLAYGROUND = "playground.ai.cloudflare.com"
MODEL = "@cf/meta/llama-3.1-8b-instruct-fast"


def chats(env) -> list:
    """The chat attempts over HTTP and socket upgrades, in the order they started."""
    found = [r for r in env.sandbox.requests(PLAYGROUND) if r.route == "cloudflare.chat" and r.method != "WS"]
    return sorted(found, key=lambda r: r.time)


def socket_chats(env) -> list:
    """The chat requests sent over agent sockets."""
    return [r for r in env.sandbox.requests(PLAYGROUND) if r.route == "cloudflare.chat" and r.method == "WS"]


@pytest.mark.parametrize("generation", ["agents", "data-stream", "ui-stream", "sse"])
async def test_every_generation_streams_text_usage_and_finish(client_env, generation: str) -> None:
    client_env.sandbox.set_knobs(generation=generation)
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Hello there"}]
    events = [e async for e in Cloudflare.create_async_generator(MODEL, messages)]
    text = "".join(e for e in events if isinstance(e, str))
    assert text.startswith("Sandbox reply to: Hello there. (system: be brief)")
    usages = [e for e in events if isinstance(e, Usage)]
    if generation == "agents":  # spec 4.2: today's finish frame carries the reason and no usage
        assert usages == []
    else:
        assert usages[0].prompt_tokens > 0 and usages[0].completion_tokens > 0
    finishes = [e for e in events if isinstance(e, FinishReason)]
    assert finishes == ([] if generation == "sse" else [FinishReason("stop")])  # the oldest has none
    assert client_env.cache.get_sync("cloudflare").generation == generation
    await eventually(lambda: chats(client_env)[-1].status in (101, 200))
    request = chats(client_env)[-1]
    record = client_env.cache.get_sync("cloudflare")
    assert request.headers["User-Agent"] == record.user_agent and request.client_class == "chrome"
    assert request.cookies["cf_clearance"] == record.cookie_jar(f"https://{PLAYGROUND}/")["cf_clearance"]


async def test_an_unpaced_socket_answer_comes_a_network_read_at_a_time(client_env) -> None:
    """The sandbox sends an unpaced answer's frames several to a write, as a loaded server does;
    the client hands on what one read brought as one batch, every frame intact and in order."""
    client_env.sandbox.set_knobs(generation="agents", reply_tokens=2000)
    async with Cloudflare.stream("Hello there", model=MODEL, transport="agents") as stream:
        batches = [batch async for batch in stream.batches()]
    texts = [event for batch in batches for event in batch if isinstance(event, str)]
    assert len(texts) == 2000 and len(batches) < len(texts) / 4
    assert stream.text == "".join(texts) and stream.text.startswith("Sandbox reply to: Hello there.")


async def test_reasoning_model_over_the_socket(client_env) -> None:
    result = await Cloudflare.chat("Why", model="@cf/qwen/qwq-32b")
    assert result.reasoning and result.text.startswith("Sandbox reply to: Why.")


async def test_auto_starts_with_the_remembered_generation_and_falls_back_on_404(client_env) -> None:
    def refused() -> int:
        return sum(r.status == 404 for r in chats(client_env))

    await Cloudflare.chat("first", model=MODEL)  # nothing remembered: HTTP first, then the socket
    await eventually(lambda: refused() == 1 and len(socket_chats(client_env)) == 1)
    assert client_env.cache.get_sync("cloudflare").generation == "agents"

    await Cloudflare.chat("second", model=MODEL)  # remembered: straight to the socket
    await eventually(lambda: len(socket_chats(client_env)) == 2)
    assert refused() == 1

    client_env.sandbox.set_knobs(generation="data-stream")  # the site goes back to HTTP
    result = await Cloudflare.chat("third", model=MODEL)
    assert result.text.startswith("Sandbox reply to: third.")
    assert client_env.cache.get_sync("cloudflare").generation == "data-stream"
    await Cloudflare.chat("fourth", model=MODEL)  # remembered: straight to HTTP
    await eventually(lambda: [r.status for r in chats(client_env)].count(200) == 2)
    assert refused() == 2  # the one refused upgrade of the third call


async def test_an_explicit_transport_is_the_only_one_tried(client_env) -> None:
    client_env.sandbox.set_knobs(generation="ui-stream")
    with pytest.raises(BadRequest) as caught:
        await Cloudflare.chat("Hi", model=MODEL, transport="agents")
    assert caught.value.status_code == 404
    result = await Cloudflare.chat("Hi", model=MODEL, transport="ui-stream")
    assert result.finish_reason == "stop"
    with pytest.raises(BadRequest):
        await Cloudflare.chat("Hi", model=MODEL, transport="carrier-pigeon")


async def test_models_come_from_the_rpc_or_the_http_list(client_env) -> None:
    await Cloudflare.chat("Hi", model=MODEL)  # harvests a session
    agents = await Cloudflare.get_models_async()
    assert "@cf/openai/gpt-oss-120b" in agents and "@cf/baai/bge-m3" not in agents  # text models only
    client_env.sandbox.set_knobs(generation="data-stream")
    http = await Cloudflare.get_models_async(models_ttl=0)
    assert http == agents
    assert [r.status for r in client_env.sandbox.requests(PLAYGROUND, "/api/models")][-1] == 200


async def test_the_2026_playground_models_and_default(client_env) -> None:
    """The agents generation's ids (spec 4.2) are known by name and alias; no model means its
    default, kimi-k2.6, which the agent is asked for in the state the client sends."""
    for alias, model in {"kimi-k2.6": "@cf/moonshotai/kimi-k2.6", "glm-5.2": "@cf/zai-org/glm-5.2",
                         "gemma-4-26b": "@cf/google/gemma-4-26b-a4b-it"}.items():  # fmt: skip
        assert Cloudflare.get_model(alias) == model and model in Cloudflare.models
    client_env.sandbox.set_knobs(generation="agents", agents_protocol="2026")
    answer = await Cloudflare.chat("Hi", model="glm-5.2", transport="agents")
    assert answer.model == "@cf/zai-org/glm-5.2" and answer.text
    default = await Cloudflare.chat("Hi", transport="agents")
    assert default.model == "@cf/moonshotai/kimi-k2.6" and default.text


async def test_unknown_model_fails_before_chatting(client_env) -> None:
    from harvestkit.client import ModelNotFound

    await Cloudflare.chat("Hi", model=MODEL)
    with pytest.raises(ModelNotFound):
        await Cloudflare.chat("Hi", model="@cf/meta/llama-99-999b")
    assert len(socket_chats(client_env)) == 1


async def test_expired_clearance_is_harvested_again_once(client_env) -> None:
    await Cloudflare.chat("Hi", model=MODEL)
    client_env.sandbox.expire_all()
    result = await Cloudflare.chat("After expiry", model=MODEL)
    assert result.text.startswith("Sandbox reply to: After expiry.")
    assert client_env.harvester.calls == ["cloudflare", "cloudflare"]


async def test_concurrent_calls_share_one_re_harvest(client_env) -> None:
    client_env.sandbox.set_knobs(generation="data-stream")
    await Cloudflare.chat("Hi", model=MODEL)
    client_env.sandbox.expire_all()
    results = await asyncio.gather(*(Cloudflare.chat(f"Call {i}", model=MODEL) for i in range(5)))
    assert all(r.text for r in results)
    assert client_env.harvester.calls == ["cloudflare", "cloudflare"]


async def test_without_a_session_or_a_browser_it_tries_once_then_says_what_to_do(client_env) -> None:
    async def no_browser(site: str, **kwargs) -> SessionRecord:
        raise BrowserNotFound("no Chromium or Chrome found")

    with pytest.raises(MissingCredentials) as caught:
        await Cloudflare.chat("Hi", model=MODEL, harvest=no_browser)
    assert "no browser" in str(caught.value) and "harvestkit" in str(caught.value)
    attempts = client_env.sandbox.requests(PLAYGROUND)
    assert attempts and {r.status for r in attempts} == {403}  # challenged with default headers


async def test_responses_refresh_cookies_in_the_cache(client_env) -> None:
    client_env.sandbox.set_knobs(generation="data-stream", cf_bm_lifetime=2.0)
    await Cloudflare.chat("Hi", model=MODEL)
    before = {c.name: c.value for c in client_env.cache.get_sync("cloudflare").cookies}
    await asyncio.sleep(1.1)  # __cf_bm embeds its issue time in seconds
    await Cloudflare.chat("Again", model=MODEL)
    after = {c.name: c.value for c in client_env.cache.get_sync("cloudflare").cookies}
    assert after["__cf_bm"] != before["__cf_bm"] and after["cf_clearance"] == before["cf_clearance"]


@pytest.mark.parametrize("generation", ["agents", "data-stream"])
async def test_rotated_cookies_keep_working(client_env, generation: str) -> None:
    client_env.sandbox.set_knobs(generation=generation, rotate_cookies=True)
    for index in range(3):
        assert (await Cloudflare.chat(f"Call {index}", model=MODEL)).text
    assert client_env.harvester.calls == ["cloudflare"]


@pytest.mark.parametrize("generation", ["agents", "data-stream", "ui-stream", "sse"])
async def test_truncation_keeps_the_text_and_malformed_data_is_a_protocol_error(client_env, generation) -> None:
    client_env.sandbox.set_knobs(generation=generation)
    await Cloudflare.chat("warm", model=MODEL)
    client_env.sandbox.fault("cloudflare.chat", truncate_after=6)
    with pytest.raises(StreamBroken) as caught:
        await Cloudflare.chat("Hello world again", model=MODEL)
    assert caught.value.text.startswith("Sandbox")
    client_env.sandbox.fault("cloudflare.chat", malformed_at=2)
    with pytest.raises(ProtocolError):
        await Cloudflare.chat("Hello world again", model=MODEL)


def upgrades(env) -> list:
    """The agent socket upgrades the sandbox saw."""
    return [r for r in env.sandbox.requests(PLAYGROUND) if "/agents/playground/" in r.path and r.method == "GET"]


@pytest.mark.parametrize(("fault", "pace"), [({"truncate_after": 40}, 0.0), ({"reset_after": 30}, 0.002)])
async def test_an_answer_whose_socket_drops_goes_on_on_a_new_socket_to_the_agent(client_env, fault, pace) -> None:
    """Spec 4.2: the agent outlives its socket. The client opens another socket to the same agent,
    asks to resume, acknowledges, and skips the replayed frames it had: the whole answer, once.
    Unpaced, the answer ended meanwhile (replay, then done); paced, it goes on live."""
    client_env.sandbox.set_knobs(generation="agents", agents_outlive_socket=True, reply_tokens=300, pace=pace)
    whole = (await Cloudflare.chat("Tell me everything", model=MODEL)).text
    before, asked = len(upgrades(client_env)), len(socket_chats(client_env))
    client_env.sandbox.fault("cloudflare.chat", **fault)
    result = await Cloudflare.chat("Tell me everything", model=MODEL)
    assert result.text == whole and result.finish_reason == "stop"
    sockets = upgrades(client_env)[before:]
    assert len(sockets) == 2 and len(socket_chats(client_env)) == asked + 1
    assert sockets[0].path.split("?")[0] == sockets[1].path.split("?")[0]  # the same agent
    await eventually(lambda: socket_chats(client_env)[-1].outcome == "outlived")


async def test_without_an_answer_to_resume_a_dropped_socket_is_a_broken_stream(client_env) -> None:
    client_env.sandbox.set_knobs(generation="agents", reply_tokens=300)
    await Cloudflare.chat("warm", model=MODEL)
    before = len(upgrades(client_env))
    client_env.sandbox.fault("cloudflare.chat", truncate_after=40)
    with pytest.raises(StreamBroken) as caught:
        await Cloudflare.chat("Tell me everything", model=MODEL)
    assert caught.value.text.startswith("Sandbox reply to: Tell me everything.")
    assert len(upgrades(client_env)) - before == 2  # the one resume asked for got resume_none


async def test_leaving_the_socket_early_cancels_the_request(client_env) -> None:
    await Cloudflare.chat("warm", model=MODEL)
    client_env.sandbox.set_knobs(pace=0.05, reply_tokens=200)
    async with Cloudflare.stream("Long answer please", model=MODEL) as stream:
        async for event in stream:
            if isinstance(event, (str, Reasoning)):
                break
    await eventually(lambda: socket_chats(client_env)[-1].outcome in ("cancelled", "client_disconnected"))


async def test_concurrent_chats_on_a_new_session_find_its_generation_once(client_env, monkeypatch) -> None:
    """Ten chats at once on a session no chat has used yet, on a site that answers on the agents
    socket: one chat's HTTP request is refused with 404 and the nine others go straight to the
    socket; the session's generation is written to the cache once, and no write repeats what the
    cache already holds."""
    from harvestkit.cache.store import AuthCache

    await client_env.harvester("cloudflare", cache=client_env.cache)  # a session no chat has used
    assert client_env.cache.get_sync("cloudflare").generation is None
    written: list[bytes] = []
    write = AuthCache._write
    monkeypatch.setattr(AuthCache, "_write", lambda self, record, data: (written.append(data), write(self, record, data))[1])
    results = await asyncio.gather(*(Cloudflare.chat(f"chat {i}", model=MODEL) for i in range(10)))
    assert [r.text.startswith(f"Sandbox reply to: chat {i}.") for i, r in enumerate(results)] == [True] * 10
    await eventually(lambda: len(socket_chats(client_env)) == 10)
    assert sum(r.status == 404 for r in chats(client_env)) == 1
    assert client_env.cache.get_sync("cloudflare").generation == "agents"
    assert all(before != after for before, after in zip(written, written[1:]))


async def test_a_sliding_cookie_sent_again_is_not_written_and_a_rotated_one_is(client_env, monkeypatch) -> None:
    """Every Cloudflare response sends `__cf_bm` again with its expiry slid (spec 4.2): chats a
    few seconds apart write nothing to the cache (no lock, no fsync per request), while a
    rotated value is written at once and keeps working."""
    from harvestkit.cache.store import AuthCache

    await Cloudflare.chat("warm", model=MODEL)  # the session's generation is learned and stored
    written: list[bytes] = []
    write = AuthCache._write
    monkeypatch.setattr(AuthCache, "_write", lambda self, record, data: (written.append(data), write(self, record, data))[1])
    updates: list[str] = []
    update = AuthCache.update
    monkeypatch.setattr(AuthCache, "update", lambda self, site, *a, **k: (updates.append(site), update(self, site, *a, **k))[1])
    before = len(socket_chats(client_env))
    for i in range(3):
        await asyncio.sleep(1.05)  # the expiry (whole seconds on the wire) slides with each chat
        assert (await Cloudflare.chat(f"again {i}", model=MODEL)).text.startswith(f"Sandbox reply to: again {i}.")
    assert len(socket_chats(client_env)) == before + 3  # each on the agents socket, each sent __cf_bm again
    assert written == [] and updates == []  # not even the lock is taken

    def held() -> str:
        return next(c.value for c in client_env.cache.get_sync("cloudflare").cookies if c.name == "__cf_bm")

    first = held()
    client_env.sandbox.set_knobs(rotate_cookies=True)
    for i in range(2):
        assert (await Cloudflare.chat(f"rotated {i}", model=MODEL)).text.startswith(f"Sandbox reply to: rotated {i}.")
    assert len(written) >= 2 and held() != first
