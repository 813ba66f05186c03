"""The chat-completions provider against a real HTTP server on loopback: plain and
streamed replies, tool calls, retries on retryable failures only, typed errors."""

from __future__ import annotations

import socket

import pytest

from byourside_server.agent.llm.provider import (
    ChatProvider, LLMConfig, LLMRequestError, LLMUnavailable, provider_from_settings,
)
from byourside_server.settings import Settings
from fake_openai import Error, FakeOpenAI, Reply, say, tool


@pytest.fixture
def fake():
    server = FakeOpenAI().start()
    yield server
    server.stop()


def provider(fake: FakeOpenAI, **overrides) -> ChatProvider:
    values = {"base_url": fake.base_url, "model": "fake-model", "api_key": "sk-test", "backoff_seconds": 0.0,
              "max_retries": 2, "timeout_seconds": 5.0}
    values.update(overrides)
    return ChatProvider(LLMConfig(**values))


@pytest.mark.parametrize("stream", [False, True])
async def test_text_reply_and_request_shape(fake, stream):
    fake.chat.append(say("We have a table for two available tonight at seven, would that work?"))
    p = provider(fake)
    result = await p.chat([{"role": "user", "content": "hi"}], tools=[{"type": "function", "function": {"name": "x"}}],
                          stream=stream)
    await p.aclose()
    assert result.content == "We have a table for two available tonight at seven, would that work?"
    assert result.tool_calls == ()
    body = fake.requests[0]
    assert body["model"] == "fake-model" and body["stream"] is stream and body["tools"][0]["function"]["name"] == "x"
    assert fake.headers[0]["authorization"] == "Bearer sk-test"


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_calls_are_assembled(fake, stream):
    fake.chat.append(Reply(text="Goodbye!", tools=[("press_digits", {"digits": "1#"}),
                                                   ("end_call", {"outcome": "objective_met", "reason": "done"})]))
    p = provider(fake)
    result = await p.chat([{"role": "user", "content": "hi"}], stream=stream)
    await p.aclose()
    assert result.content == "Goodbye!"
    assert [(c.name, dict(c.arguments)) for c in result.tool_calls] == [
        ("press_digits", {"digits": "1#"}), ("end_call", {"outcome": "objective_met", "reason": "done"})]
    assert result.finish_reason == "tool_calls"


@pytest.mark.parametrize("stream", [False, True])
async def test_server_errors_are_retried_then_succeed(fake, stream):
    fake.fail_next = 2
    fake.chat.append(say("Recovered."))
    p = provider(fake, max_retries=2)
    result = await p.chat([{"role": "user", "content": "hi"}], stream=stream)
    await p.aclose()
    assert result.content == "Recovered."
    assert len(fake.requests) == 3


async def test_persistent_5xx_raises_unavailable_after_retries(fake):
    fake.down = True
    p = provider(fake, max_retries=3)
    with pytest.raises(LLMUnavailable, match="503"):
        await p.chat([{"role": "user", "content": "hi"}])
    await p.aclose()
    assert len(fake.requests) == 4


@pytest.mark.parametrize("status", [400, 401, 404])
async def test_client_errors_are_not_retried(fake, status):
    fake.chat.append(Error(status, "bad key or model"))
    p = provider(fake, max_retries=3)
    with pytest.raises(LLMRequestError) as info:
        await p.chat([{"role": "user", "content": "hi"}], stream=True)
    await p.aclose()
    assert info.value.status == status and "bad key or model" in str(info.value)
    assert len(fake.requests) == 1


async def test_timeout_is_unavailable_and_retried(fake):
    fake.chat += [Reply(text="slow", delay=1.0), say("fast")]
    p = provider(fake, timeout_seconds=0.3, max_retries=1)
    result = await p.chat([{"role": "user", "content": "hi"}])
    await p.aclose()
    assert result.content == "fast"


async def test_connection_refused_is_unavailable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = ChatProvider(LLMConfig(base_url=f"http://127.0.0.1:{port}/v1", model="m", backoff_seconds=0, max_retries=1))
    with pytest.raises(LLMUnavailable):
        await p.chat([{"role": "user", "content": "hi"}])
    await p.aclose()


async def test_garbled_tool_arguments_become_empty(fake):
    fake.fallback = None
    fake.chat.append(tool("wait_silently"))
    p = provider(fake)
    result = await p.chat([{"role": "user", "content": "hi"}], stream=True)
    await p.aclose()
    assert result.tool_calls[0].name == "wait_silently" and dict(result.tool_calls[0].arguments) == {}


def test_settings_without_model_name_the_missing_variables():
    with pytest.raises(ValueError, match="BYS_LLM_BASE_URL and BYS_LLM_MODEL"):
        provider_from_settings(Settings(_env_file=None))


@pytest.mark.parametrize("stream", [False, True])
async def test_time_to_first_token_is_measured_from_the_request(fake, stream):
    fake.chat.append(Reply(text="Yes, we are open.", delay=0.3))  # the server thinks for 300 ms first
    p = provider(fake)
    result = await p.chat([{"role": "user", "content": "hi"}], stream=stream)
    await p.aclose()
    assert result.first_token_ms is not None and result.first_token_ms >= 300
