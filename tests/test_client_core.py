"""The instance client against the sandbox: both sites, two clients that share nothing, and the
second turn of a conversation that kept the model's reasoning in its history."""

from __future__ import annotations

import asyncio
import dataclasses

from client_helpers import StandInHarvester, eventually
from harvestkit.cache import AuthCache
from harvestkit.client import Cerebras, Client, Reasoning, Settings
from harvestkit.sandbox import Sandbox
from harvestkit.sandbox.shortcuts import sandbox_session, sign_in

API = "api.cerebras.ai"
CF_MODEL = "@cf/meta/llama-3.1-8b-instruct-fast"


def settings_for(sandbox: Sandbox, root, profile: str = "default") -> Settings:
    """Settings pointed at ``sandbox`` (its proxy and CA), with a cache and harvester of their own."""
    return Settings(
        proxy=sandbox.env["HARVESTKIT_PROXY"],
        ca_bundle=sandbox.env["HARVESTKIT_CA_BUNDLE"],
        cache=AuthCache(root),
        harvest=StandInHarvester(sandbox),
        profile=profile,
        backoff_base=0.01,
        backoff_cap=0.05,
    )


async def test_the_client_chats_streams_and_lists_models_on_both_sites(client_env, tmp_path) -> None:
    async with Client(settings_for(client_env.sandbox, tmp_path / "cache")) as client:
        answer = await client.chat("Hi there", provider="cerebras", model="gemma-4-31b", temperature=0.2)
        assert answer.text.startswith("Sandbox reply to: Hi there.") and answer.provider == "cerebras"
        async with client.stream("Think", provider="cerebras", model="gpt-oss") as stream:
            kinds = {type(event) async for event in stream}
        assert Reasoning in kinds and stream.model == "gpt-oss-120b" and stream.text.startswith("Sandbox reply to: Think.")
        cloud = await client.chat("Hello cloud", provider="cloudflare", model=CF_MODEL)
        assert cloud.text.startswith("Sandbox reply to: Hello cloud.")
        assert "@cf/openai/gpt-oss-120b" in await client.models("cloudflare")
    assert client.cache.get_sync("cloudflare").generation == "agents"
    assert client_env.cache.get_sync("cerebras") is None  # the client's own cache, not the default one
    assert Cerebras._live_models == {}  # nor the default client's model lists


async def test_two_clients_share_nothing(client_env, tmp_path) -> None:
    """Two proxies (two sandboxes), two caches, two profiles: connections, model lists and
    sessions stay apart, and closing one client leaves the other working."""
    first_world = client_env.sandbox
    with Sandbox() as second_world:
        first = Client(settings_for(first_world, tmp_path / "a", profile="work"))
        second = Client(settings_for(second_world, tmp_path / "b", profile="home"))
        assert first.transport is not second.transport and first.model_cache is not second.model_cache
        for client in (first, second):
            assert (await client.chat("Hi", provider="cerebras", model="gemma-4-31b")).text
        for world in (first_world, second_world):
            await eventually(lambda w=world: len(w.requests(API, "/v1/chat/completions")) == 1)
            assert len(world.requests(API, "/v1/models")) == 1  # each client fetched its own list
        assert first.cache.get_sync("cerebras", "work") and first.cache.get_sync("cerebras", "home") is None
        assert second.cache.get_sync("cerebras", "home") and second.cache.get_sync("cerebras", "work") is None
        assert first.cache.get_sync("cerebras", "work").api_key != second.cache.get_sync("cerebras", "home").api_key

        before = second_world.handshakes(API)
        await first.aclose()
        assert (await second.chat("Still there?", provider="cerebras", model="gemma-4-31b")).text
        assert second_world.handshakes(API) == before  # its kept-alive connection survived
        await second.aclose()
    assert len(first_world.requests(API, "/v1/chat/completions")) == 1


async def test_the_second_turn_after_a_reasoning_answer(client_env, tmp_path) -> None:
    """A chat client keeps ``reasoning_content`` in the assistant message; the API refuses that
    property (400 wrong_api_format), so the client sends only the documented fields."""
    async with sandbox_session(client_env.sandbox.env) as session:
        key = (await sign_in(session))["user"]["demoApiKey"]
        kept = [{"role": "user", "content": "Think"}, {"role": "assistant", "content": "ok", "reasoning_content": "hm"}]
        refused = await session.post(f"https://{API}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                                     json={"model": "gpt-oss-120b", "messages": kept})  # fmt: skip
    assert refused.status_code == 400 and refused.json()["code"] == "wrong_api_format"
    assert "reasoning_content" in refused.json()["message"]

    async with Client(settings_for(client_env.sandbox, tmp_path / "cache")) as client:
        first = await client.chat("Think", provider="cerebras", model="gpt-oss-120b")
        assert first.reasoning
        history = [
            {"role": "user", "content": "Think"},
            {"role": "assistant", "content": first.text, "reasoning_content": first.reasoning, "reasoning": first.reasoning},
            {"role": "user", "content": "And then?"},
        ]
        second = await client.chat(history, provider="cerebras", model="gpt-oss-120b")
    assert second.text.startswith("Sandbox reply to: And then?")
    await eventually(lambda: [r.status for r in client_env.chats()][-2:] == [200, 200])


async def test_with_options_shares_connections_and_changes_settings(client_env, tmp_path) -> None:
    async with Client(settings_for(client_env.sandbox, tmp_path / "cache")) as client:
        await client.chat("warm", provider="cerebras", model="gemma-4-31b")
        patient = client.with_options(idle_timeout=30, max_retries=0)
        assert patient.settings == dataclasses.replace(client.settings, idle_timeout=30, max_retries=0)
        assert patient.transport is client.transport and patient.model_cache is client.model_cache
        before = client_env.sandbox.handshakes(API)
        assert (await patient.chat("again", provider="cerebras", model="gemma-4-31b")).text
        assert client_env.sandbox.handshakes(API) == before


async def test_more_sockets_than_max_connections_wait_for_a_free_one(client_env, tmp_path) -> None:
    """Five agents chats at once with ``max_connections=2``: the others wait until a socket
    closes, then run (curl_cffi 0.17 refuses a connection once live WebSockets hold every
    handle); a Cerebras request waits as well."""
    client_env.sandbox.set_knobs(generation="agents", pace=0.002, reply_tokens=40)
    settings = dataclasses.replace(settings_for(client_env.sandbox, tmp_path / "cache"), max_connections=2)
    async with Client(settings) as client:
        await client.chat("warm", provider="cloudflare", model=CF_MODEL)  # the session, harvested
        await client.chat("warm", provider="cerebras", model="gemma-4-31b")
        answers = await asyncio.gather(
            *(client.chat(f"socket {index}", provider="cloudflare", model=CF_MODEL) for index in range(5)),
            client.chat("http", provider="cerebras", model="gemma-4-31b"),
        )
    assert [answer.text.split(".")[0] for answer in answers] == [
        *(f"Sandbox reply to: socket {index}" for index in range(5)), "Sandbox reply to: http"
    ]

