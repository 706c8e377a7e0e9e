"""Operating the gateway: request ids, readiness, Prometheus metrics, the access log, named keys."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator

import aiohttp
import openai
import pytest
from harvestkit.gateway import serve
from prometheus_client.parser import text_string_to_metric_families

KEYS = {"alice": "alice-key-0123456789", "bob": "bob-key-0123456789"}
ALICE = {"Authorization": f"Bearer {KEYS['alice']}"}
CHAT = {"model": "cerebras/gemma-4-31b", "messages": [{"role": "user", "content": "Hello ops"}]}


@pytest.fixture
async def gateway(client_env, caplog) -> AsyncIterator[str]:
    caplog.set_level(logging.INFO, logger="harvestkit.gateway.access")
    async with serve(port=0, keys=KEYS) as url:
        yield url


def basic(user: str, password: str) -> dict[str, str]:
    """The Authorization header a browser sends for HTTP Basic credentials."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def access_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "harvestkit.gateway.access"]


async def eventually_logged(caplog, count: int) -> list[str]:
    """aiohttp writes the access line just after the response: wait for it."""
    for _ in range(200):
        if len(access_lines(caplog)) >= count:
            break
        await asyncio.sleep(0.01)
    return access_lines(caplog)


def scrape(text: str) -> dict[str, list]:
    """Samples by name, parsed with prometheus-client's own parser."""
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def value(samples: dict[str, list], name: str, **labels: str) -> float:
    return sum(s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items()))


async def test_every_response_has_a_request_id_and_a_plain_one_is_echoed(gateway) -> None:
    async with aiohttp.ClientSession(gateway) as http:
        async with http.get("/health") as health, http.get("/v1/models") as refused:
            generated = {health.headers["x-request-id"], refused.headers["x-request-id"]}
        async with http.get("/health", headers={"X-Request-Id": "trace-42.a"}) as echoed:
            assert echoed.headers["x-request-id"] == "trace-42.a"
        async with http.get("/health", headers={"X-Request-Id": "bad id with spaces"}) as replaced:
            assert replaced.headers["x-request-id"].startswith("req_")
        async with http.post("/v1/chat/completions", json={**CHAT, "stream": True}, headers=ALICE) as streamed:
            await streamed.read()
            assert streamed.headers["x-request-id"].startswith("req_")
    assert len(generated) == 2 and all(g.startswith("req_") for g in generated)


async def test_ready_is_503_with_detail_until_a_provider_has_a_session(gateway, client_env) -> None:
    async with aiohttp.ClientSession(gateway) as http:
        async with http.get("/ready") as cold, http.get("/health") as alive:
            cold_body = await cold.json()
            assert (cold.status, alive.status) == (503, 200)
        await client_env.harvester("cloudflare", cache=client_env.cache)
        async with http.get("/ready") as warm:
            warm_body = await warm.json()
        client_env.sandbox.expire_all()
    assert cold_body["status"] == "not ready"
    assert set(cold_body["providers"]) == {"cerebras", "cloudflare"}
    assert "harvestkit harvest cerebras" in cold_body["providers"]["cerebras"]["detail"]
    assert not cold_body["providers"]["cloudflare"]["ready"]
    assert warm.status == 200 and warm_body["providers"]["cloudflare"]["ready"] is True
    assert warm_body["providers"]["cloudflare"]["fresh"] is True and warm_body["providers"]["cerebras"]["ready"] is False


async def test_metrics_scraped_and_parsed(gateway, client_env) -> None:
    async with openai.AsyncOpenAI(base_url=gateway + "/v1", api_key=KEYS["alice"], max_retries=0) as alice:
        stream = await alice.chat.completions.create(**CHAT, stream=True, stream_options={"include_usage": True})
        async for _ in stream:  # the first call harvests (cold start)
            pass
        await alice.responses.create(model="cerebras/gemma-4-31b", input="metrics")
        client_env.sandbox.fault("cerebras.chat", status=429, retry_after=1)
        with pytest.raises(openai.RateLimitError):
            await alice.chat.completions.create(**CHAT)
    async with openai.AsyncOpenAI(base_url=gateway + "/v1", api_key=KEYS["bob"], max_retries=0) as bob:
        with pytest.raises(openai.NotFoundError):
            await bob.chat.completions.create(model="nope", messages=CHAT["messages"])
    async with aiohttp.ClientSession(gateway) as http:
        async with http.get("/metrics") as refused:
            assert refused.status == 401
        async with http.get("/metrics", headers=ALICE) as response:
            assert response.headers["content-type"].startswith("text/plain")
            samples = scrape(await response.text())
    requests = "harvestkit_gateway_requests_total"
    chat = {"endpoint": "/v1/chat/completions", "provider": "cerebras", "model": "gemma-4-31b"}
    assert value(samples, requests, **chat, status="200", key="alice") == 1
    assert value(samples, requests, **chat, status="429", key="alice") == 1
    assert value(samples, requests, endpoint="/v1/responses", provider="cerebras", status="200", key="alice") == 1
    assert value(samples, requests, provider="none", model="unrouted", status="404", key="bob") == 1
    assert value(samples, "harvestkit_gateway_tokens_total", provider="cerebras", direction="in") > 0
    assert value(samples, "harvestkit_gateway_tokens_total", provider="cerebras", direction="out") > 0
    assert value(samples, "harvestkit_gateway_first_chunk_seconds_count", provider="cerebras") == 2
    assert value(samples, "harvestkit_gateway_request_seconds_count", endpoint="/v1/chat/completions") == 3
    assert value(samples, "harvestkit_harvests_total", site="cerebras", outcome="ok") == 1
    assert value(samples, "harvestkit_upstream_errors_total", provider="cerebras", error="RateLimited") == 1
    assert value(samples, "harvestkit_session_fresh", site="cerebras", profile="default") == 1
    assert value(samples, "harvestkit_session_expires_in_seconds", site="cerebras") > 3600
    assert all(KEYS["alice"] not in str(s) for family in samples.values() for s in family)


async def test_access_log_escapes_control_characters_and_names_the_key(gateway, caplog) -> None:
    reader, writer = await asyncio.open_connection(*gateway.removeprefix("http://").split(":"))
    forged = "/v1/models/x%0d%0aINFO%20harvestkit.gateway.access:%20forged%1b[31m"
    writer.write(f"GET {forged} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    assert (await reader.read()).startswith(b"HTTP/1.1 401")
    writer.close()
    await writer.wait_closed()
    async with aiohttp.ClientSession(gateway) as http, http.post("/v1/chat/completions", json=CHAT, headers=ALICE) as ok:
        await ok.read()
    lines = await eventually_logged(caplog, 2)
    assert all(not any(ord(c) < 32 or ord(c) == 127 for c in line) for line in lines)
    refused, chat = lines[0], lines[1]
    assert "x\\r\\nINFO harvestkit.gateway.access: forged\\x1b[31m" in refused and " 401 " in refused
    assert "key=alice" in chat and KEYS["alice"] not in "".join(lines)
    assert "model=cerebras/gemma-4-31b" in chat and ok.headers["x-request-id"] in chat
    tokens = chat.split("tokens=")[1].split()[0]
    first = chat.split("first=")[1].split("ms")[0]
    total = chat.split("total=")[1].split("ms")[0]
    assert all(part.isdigit() and int(part) > 0 for part in tokens.split("/"))
    assert first.isdigit() and total.isdigit() and int(first) <= int(total)


async def test_each_named_key_works_and_others_are_refused(gateway) -> None:
    async with aiohttp.ClientSession(gateway) as http:
        for key in KEYS.values():
            async with http.get("/v1/models", headers={"Authorization": f"Bearer {key}"}) as ok:
                assert ok.status == 200
        async with http.get("/v1/models", headers={"Authorization": "Bearer not-a-key-at-all"}) as wrong:
            assert wrong.status == 401 and (await wrong.json())["error"]["code"] == "invalid_api_key"
        # a browser sends the key as the Basic password when the status page asks for it
        async with http.get("/", headers=basic("anyone", KEYS["bob"])) as page:
            assert page.status == 200 and page.content_type == "text/html"
        async with http.get("/", headers=basic("anyone", "wrong-password")) as refused:
            assert refused.status == 401 and refused.headers["WWW-Authenticate"].startswith("Basic")
