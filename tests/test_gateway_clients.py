"""Third-party clients against the gateway, both APIs: litellm and langchain-openai."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator

import pytest
from harvestkit.gateway import serve

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm would fetch a price list at import
os.environ.setdefault("LITELLM_TELEMETRY", "False")

litellm = pytest.importorskip("litellm")
langchain_openai = pytest.importorskip("langchain_openai")

KEY = "gw-clients-key-0123456789"
TOOL = {"type": "function", "function": {"name": "lookup", "description": "look up",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}  # fmt: skip


@pytest.fixture
async def base(client_env, caplog) -> AsyncIterator[str]:
    caplog.set_level(logging.INFO, logger="harvestkit.gateway.access")
    async with serve(port=0, api_key=KEY) as url:
        yield url + "/v1"


def endpoints(caplog) -> list[str]:
    """The gateway's access log: which endpoint each request used."""
    return [r.getMessage().split('"')[1] for r in caplog.records if r.name == "harvestkit.gateway.access"]


async def test_litellm_responses_whole_and_streamed(base, caplog) -> None:
    whole = await litellm.aresponses(model="openai/cerebras/gemma-4-31b", input="Hi litellm", api_base=base, api_key=KEY)
    assert whole.output[0].content[0].text.startswith("Sandbox reply to: Hi litellm.")
    assert whole.usage.output_tokens > 0
    stream = await litellm.aresponses(model="openai/cerebras/gemma-4-31b", input="Stream litellm", api_base=base,
                                      api_key=KEY, stream=True)  # fmt: skip
    kinds, text = [], []
    async for event in stream:
        kinds.append(str(getattr(event.type, "value", event.type)))
        if "output_text.delta" in kinds[-1]:
            text.append(event.delta)
    assert "".join(text).startswith("Sandbox reply to: Stream litellm."), kinds
    assert any(k.endswith("response.completed") for k in kinds)
    assert endpoints(caplog) == ["POST /v1/responses"] * 2  # the Responses API itself, not a bridge


async def test_litellm_chat_completions_with_a_tool(base) -> None:
    answer = await litellm.acompletion(model="openai/cerebras/gpt-oss-120b", api_base=base, api_key=KEY,
                                       messages=[{"role": "user", "content": "weather"}], tools=[TOOL])  # fmt: skip
    (call,) = answer.choices[0].message.tool_calls
    assert call.function.name == "lookup"


async def test_langchain_with_the_responses_api(base, caplog) -> None:
    model = langchain_openai.ChatOpenAI(model="cerebras/gemma-4-31b", base_url=base, api_key=KEY,
                                        use_responses_api=True, max_retries=0)  # fmt: skip
    message = await model.ainvoke("Hi langchain")
    assert message.text.startswith("Sandbox reply to: Hi langchain.")
    chunks = [chunk async for chunk in model.astream("Stream langchain")]
    assert "".join(c.text for c in chunks).startswith("Sandbox reply to: Stream langchain.")
    tools = langchain_openai.ChatOpenAI(model="cerebras/gpt-oss-120b", base_url=base, api_key=KEY,
                                        use_responses_api=True, max_retries=0).bind_tools([TOOL])  # fmt: skip
    called = await tools.ainvoke("weather")
    assert called.tool_calls[0]["name"] == "lookup" and called.tool_calls[0]["args"] == {"q": "weather"}
    assert endpoints(caplog) == ["POST /v1/responses"] * 3


async def test_langchain_with_chat_completions(base) -> None:
    model = langchain_openai.ChatOpenAI(model="qwq-32b", base_url=base, api_key=KEY, max_retries=0)
    message = await model.ainvoke("Hi chat")
    assert message.content.startswith("Sandbox reply to: Hi chat.")
