"""The Cerebras provider against the sandbox: credentials, the demo key, errors, retries, streams."""

from __future__ import annotations

import asyncio
import time

import pytest
from client_helpers import eventually
from harvestkit.client import (
    AuthExpired,
    Cerebras,
    FinishReason,
    MissingCredentials,
    ModelNotFound,
    ProtocolError,
    RateLimited,
    Reasoning,
    ServerError,
    StreamBroken,
    StreamTimeout,
    Usage,
    chat,
    chat_sync,
)


async def test_first_chat_harvests_then_reuses_the_cached_session(client_env) -> None:
    events = [e async for e in Cerebras.create_async_generator("gemma-4-31b", [{"role": "user", "content": "Hi there"}])]
    text = "".join(e for e in events if isinstance(e, str))
    assert text.startswith("Sandbox reply to: Hi there.")
    usage, finish = events[-2:]
    assert isinstance(usage, Usage) and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.time_info and "total_time" in usage.time_info
    assert finish == FinishReason("stop")

    second = await Cerebras.chat("Again", model="gemma-4-31b")
    assert second.text.startswith("Sandbox reply to: Again.") and second.finish_reason == "stop"
    assert client_env.harvester.calls == ["cerebras"]
    record = client_env.cache.get_sync("cerebras")
    (chat_request, _) = client_env.chats()
    headers = {name.lower(): value for name, value in chat_request.headers.items()}
    assert headers["authorization"] == f"Bearer {record.api_key}"
    assert headers["user-agent"] == record.user_agent
    assert headers["sec-ch-ua"] == record.client_hints["sec-ch-ua"]
    assert headers["sec-fetch-mode"] == "cors" and "upgrade-insecure-requests" not in headers
    assert chat_request.client_class == "chrome"
    assert headers["x-stainless-lang"] == "js"


async def test_text_arrives_in_order_and_complete(client_env) -> None:
    client_env.sandbox.set_knobs(reply_tokens=40)
    result = await chat("Repeat", model="gemma-4-31b")
    assert " the the" in result.text  # a token equal to the one before it is still there
    assert result.usage.completion_tokens == 40


async def test_reasoning_models_stream_reasoning_apart(client_env) -> None:
    stream = Cerebras.stream("Think", model="gpt-oss")  # an alias
    async with stream:
        events = [e async for e in stream]
    assert any(isinstance(e, Reasoning) for e in events)
    assert stream.reasoning.startswith("Thinking about")
    assert stream.text.startswith("Sandbox reply to: Think.")
    assert stream.model == "gpt-oss-120b"


async def test_unknown_model_fails_before_any_chat_request(client_env) -> None:
    with pytest.raises(ModelNotFound) as caught:
        await Cerebras.chat("Hi", model="llama3.1-70000b")
    assert "llama3.1-70000b" in str(caught.value)
    assert client_env.chats() == []


async def test_model_list_is_live_and_kept_for_its_ttl(client_env) -> None:
    client_env.sandbox.set_knobs(retire_models=False)  # the pre-retirement list: unlike the built-in one
    assert Cerebras.get_models() == list(Cerebras.models)  # nothing cached yet: no harvest, built-in list
    await Cerebras.chat("Hi", model="gemma-4-31b")
    live = await Cerebras.get_models_async()
    assert "qwen-3-235b-a22b-instruct-2507" in live and "llama3.1-70b" not in live
    await Cerebras.get_models_async()
    await Cerebras.chat("Hi", model="zai-glm-4.7")  # served from the cached live list's id
    assert len(client_env.sandbox.requests("api.cerebras.ai", "/v1/models")) == 1


async def test_sync_entry_points_work_inside_a_running_loop(client_env) -> None:
    result = chat_sync("From sync code", model="gemma-4-31b")
    assert result.text.startswith("Sandbox reply to: From sync code.")
    assert "gemma-4-31b" in Cerebras.get_models()


async def test_explicit_api_key_is_used_and_never_cached(client_env) -> None:
    client_env.sandbox.accounts.add_key("csk-explicit-test-key")
    result = await Cerebras.chat("Hi", model="gemma-4-31b", api_key="csk-explicit-test-key")
    assert result.text
    assert client_env.chats()[0].headers["Authorization"] == "Bearer csk-explicit-test-key"
    assert client_env.cache.get_sync("cerebras") is None and client_env.harvester.calls == []


async def test_explicit_wrong_key_raises_without_recovery(client_env) -> None:
    with pytest.raises(AuthExpired) as caught:
        await Cerebras.chat("Hi", model="gemma-4-31b", api_key="csk-wrong-key-1234567890")
    assert caught.value.status_code == 401 and "csk-wrong-key-1234567890" not in str(caught.value)
    assert client_env.harvester.calls == []


async def test_explicit_empty_cookies_mean_no_session_and_no_harvest(client_env) -> None:
    with pytest.raises(MissingCredentials) as caught:
        await Cerebras.chat("Hi", cookies={})
    assert "harvestkit login cerebras" in str(caught.value)
    assert client_env.harvester.calls == [] and client_env.sandbox.requests() == []


async def test_no_harvest_setting_gives_missing_credentials(client_env) -> None:
    with pytest.raises(MissingCredentials):
        await Cerebras.chat("Hi", allow_harvest=False)
    assert client_env.harvester.calls == []


async def test_signed_out_session_says_how_to_sign_in(client_env) -> None:
    client_env.harvester.signed_in = False
    with pytest.raises(MissingCredentials) as caught:
        await Cerebras.chat("Hi")
    assert "signed out" in str(caught.value) and "harvestkit login cerebras" in str(caught.value)


async def test_expired_demo_key_is_renewed_from_the_session_once(client_env) -> None:
    client_env.sandbox.set_knobs(demo_key_lifetime=1.5)
    await Cerebras.chat("Hi", model="gemma-4-31b")
    old_key = client_env.cache.get_sync("cerebras").api_key
    await asyncio.sleep(1.6)
    result = await Cerebras.chat("After expiry", model="gemma-4-31b")
    assert result.text.startswith("Sandbox reply to: After expiry.")
    new_key = client_env.cache.get_sync("cerebras").api_key
    assert new_key != old_key and client_env.harvester.calls == ["cerebras"]  # no new harvest
    await eventually(lambda: [r.status for r in client_env.chats()] == [200, 401, 200])


async def test_dead_session_is_harvested_again_once(client_env) -> None:
    await Cerebras.chat("Hi", model="gemma-4-31b")
    client_env.sandbox.expire_all()  # the key and the session both die
    result = await Cerebras.chat("After expiry", model="gemma-4-31b")
    assert result.text and client_env.harvester.calls == ["cerebras", "cerebras"]


async def test_session_call_merges_set_cookie_into_the_cache(client_env) -> None:
    await Cerebras.chat("Hi", model="gemma-4-31b")
    record = client_env.cache.get_sync("cerebras")
    stale = next(c for c in record.cookies if c.name == "__Secure-authjs.session-token")
    client_env.cache.update_sync("cerebras", lambda r: r.merge_cookies([]) and _without_key(r))
    await asyncio.sleep(1.1)  # cookie expiry has one-second precision
    await Cerebras.chat("Hi again", model="gemma-4-31b")
    fresh = next(c for c in client_env.cache.get_sync("cerebras").cookies if c.name == "__Secure-authjs.session-token")
    assert fresh.expires > stale.expires  # re-set by the session call, merged at once
    assert client_env.cache.get_sync("cerebras").expires_at == fresh.expires


def _without_key(record):
    import dataclasses

    return dataclasses.replace(record, api_key=None)


async def test_rate_limit_is_retried_honouring_retry_after(client_env) -> None:
    await Cerebras.chat("warm", model="gemma-4-31b")
    client_env.sandbox.fault("cerebras.chat", status=429, retry_after=0.3, times=1)
    started = time.monotonic()
    result = await Cerebras.chat("Hi", model="gemma-4-31b")
    assert result.text and time.monotonic() - started >= 0.3
    await eventually(lambda: [r.status for r in client_env.chats()] == [200, 429, 200])


async def test_server_errors_give_up_after_the_configured_retries(client_env) -> None:
    await Cerebras.chat("warm", model="gemma-4-31b")
    client_env.sandbox.fault("cerebras.chat", status=503, times=None)
    with pytest.raises(ServerError) as caught:
        await Cerebras.chat("Hi", model="gemma-4-31b", max_retries=3)
    assert caught.value.status_code == 503
    await eventually(lambda: [r.status for r in client_env.chats()] == [200, 503, 503, 503, 503])


async def test_rate_limit_without_retries_carries_retry_after(client_env) -> None:
    await Cerebras.chat("warm", model="gemma-4-31b")
    client_env.sandbox.fault("cerebras.chat", status=429, retry_after_ms=1500, times=None)
    with pytest.raises(RateLimited) as caught:
        await Cerebras.chat("Hi", model="gemma-4-31b", max_retries=0)
    assert caught.value.retry_after == 1.5 and caught.value.status_code == 429


async def test_no_retry_once_a_chunk_was_yielded(client_env) -> None:
    await Cerebras.chat("warm", model="gemma-4-31b")
    client_env.sandbox.fault("cerebras.chat", error_at=3, times=None)
    stream = Cerebras.stream("Hi there", model="gemma-4-31b")
    with pytest.raises(StreamBroken) as caught:
        async for _ in stream:
            pass
    assert stream.text and caught.value.text == stream.text
    assert len(client_env.chats()) == 2  # the warm-up and one attempt


async def test_truncated_stream_keeps_the_text_received(client_env) -> None:
    await Cerebras.chat("warm", model="gemma-4-31b")
    client_env.sandbox.fault("cerebras.chat", truncate_after=4)
    with pytest.raises(StreamBroken) as caught:
        await Cerebras.chat("Hello world", model="gemma-4-31b")
    assert caught.value.text.startswith("Sandbox")
    assert type(caught.value) is StreamBroken


async def test_malformed_chunk_is_a_protocol_error(client_env) -> None:
    await Cerebras.chat("warm", model="gemma-4-31b")
    client_env.sandbox.fault("cerebras.chat", malformed_at=3)
    with pytest.raises(ProtocolError):
        await Cerebras.chat("Hello world", model="gemma-4-31b")


async def test_idle_timeout_bites_with_the_text_so_far(client_env) -> None:
    await Cerebras.chat("warm", model="gemma-4-31b")
    client_env.sandbox.set_knobs(pace=10.0)
    started = time.monotonic()
    with pytest.raises(StreamTimeout) as caught:
        await Cerebras.chat("Hello world", model="gemma-4-31b", idle_timeout=0.4, max_retries=0)
    assert time.monotonic() - started < 8.0  # the idle timeout bit, not the 10 s pause between chunks
    assert isinstance(caught.value, StreamBroken)


async def test_the_idle_timeout_counts_from_the_last_data_not_from_the_first_wait(client_env) -> None:
    """Chunks every 0.1 s under a 0.35 s idle timeout: a stream lasting several idle timeouts
    completes (each wait has its own deadline), and cancelling a chat during a wait is a
    cancellation, not a timeout."""
    await Cerebras.chat("warm", model="gemma-4-31b")
    client_env.sandbox.set_knobs(pace=0.1, reply_tokens=15)
    started = time.monotonic()
    answer = await Cerebras.chat("Hello world", model="gemma-4-31b", idle_timeout=0.35, max_retries=0)
    assert answer.finish_reason == "stop" and time.monotonic() - started > 1.0
    client_env.sandbox.set_knobs(pace=2.0)
    task = asyncio.ensure_future(Cerebras.chat("Hello again", model="gemma-4-31b", idle_timeout=5, max_retries=0))
    await asyncio.sleep(0.3)  # the first chunk came, the second is 2 s away
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_leaving_a_stream_early_releases_the_connection(client_env) -> None:
    await Cerebras.chat("warm", model="gemma-4-31b")
    client_env.sandbox.set_knobs(pace=0.05, reply_tokens=200)
    async with Cerebras.stream("Long answer please", model="gemma-4-31b") as stream:
        async for event in stream:
            if isinstance(event, str):
                break
    deadline = time.monotonic() + 5  # the sandbox records the outcome when its handler ends
    while client_env.chats()[-1].outcome != "client_disconnected" and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert [r.outcome for r in client_env.chats()] == ["complete", "client_disconnected"]
    assert stream.closed and stream.text == "Sandbox"


async def test_sequential_requests_share_one_connection(client_env) -> None:
    await Cerebras.chat("warm", model="gemma-4-31b")
    before = client_env.sandbox.handshakes("api.cerebras.ai")
    for index in range(10):
        await Cerebras.chat(f"Request {index}", model="gemma-4-31b")
    assert client_env.sandbox.handshakes("api.cerebras.ai") == before


async def test_url_attributes_can_be_overridden_per_call(client_env) -> None:
    with pytest.raises(Exception) as caught:
        await Cerebras.chat("Hi", model="gemma-4-31b", api_base="https://api.example.invalid/v1", max_retries=0)
    assert "api.example.invalid" in str(caught.value)


async def test_the_proxy_recorded_at_harvest_is_used_unless_overridden(client_env, monkeypatch) -> None:
    import dataclasses

    from harvestkit.client import ConnectError

    await Cerebras.chat("Hi", model="gemma-4-31b")
    assert client_env.cache.get_sync("cerebras").proxy == client_env.sandbox.proxy_url
    # No proxy setting any more; a dead environment proxy catches a request that ignores the record.
    monkeypatch.setattr(Cerebras, "settings", dataclasses.replace(Cerebras.settings, proxy=None))
    for name in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    assert (await Cerebras.chat("Via the recorded proxy", model="gemma-4-31b")).text
    with pytest.raises(ConnectError):
        await Cerebras.chat("Hi", model="gemma-4-31b", proxy="http://127.0.0.1:9", max_retries=0)


async def test_total_timeout_bounds_a_slow_stream(client_env) -> None:
    from harvestkit.client import Timeout

    await Cerebras.chat("warm", model="gemma-4-31b")
    client_env.sandbox.set_knobs(pace=0.2, reply_tokens=100)
    started = time.monotonic()
    with pytest.raises(Timeout) as caught:
        await Cerebras.chat("Slow", model="gemma-4-31b", total_timeout=0.5)
    assert 0.4 < time.monotonic() - started < 15.0  # cut by the total timeout, long before the 20 s stream ends
    assert isinstance(caught.value, StreamBroken) and caught.value.text.startswith("Sandbox")
