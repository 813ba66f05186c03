"""A chat-completions client for any OpenAI-compatible endpoint, over httpx.

One request shape (``POST {base_url}/chat/completions``) serves OpenAI, Groq,
Together, vLLM, llama.cpp's server and Ollama. Streaming responses (server-sent
events) are assembled into one ``ChatResult``: content deltas are joined and
tool-call deltas are merged by index, so callers never see the difference;
a caller that wants the words as they come (to speak them from the first
clause) passes ``on_content``, called with each content delta.

Failures are typed. ``LLMUnavailable`` means "try again later" (connection
errors, timeouts, 408/409/429 and 5xx); those are retried here with
exponential backoff before being raised. ``LLMRequestError`` (any other 4xx:
a bad key, an unknown model, a rejected request) is raised at once, since
repeating it cannot help. ``LLMResponseError`` is a reply we cannot read.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import httpx
import structlog

log = structlog.get_logger(__name__)

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class LLMError(Exception):
    """Any failure talking to the model."""


class LLMUnavailable(LLMError):
    """The endpoint could not answer now (network, timeout, overload, 5xx); worth retrying later."""


class LLMRequestError(LLMError):
    """The endpoint rejected the request (4xx other than overload); retrying will not help."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class LLMResponseError(LLMError):
    """The endpoint answered with something that is not a chat completion."""


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: Mapping[str, Any]


@dataclass(frozen=True)
class ChatResult:
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    first_token_ms: float | None = None  # request sent -> first content or tool-call token (whole reply if not streamed)


@dataclass(frozen=True)
class LLMConfig:
    base_url: str
    model: str
    api_key: str | None = None
    timeout_seconds: float = 30.0
    max_retries: int = 2  # extra attempts after the first, for retryable failures only
    backoff_seconds: float = 0.5  # doubled after each retry
    temperature: float | None = 0.3
    extra_headers: Mapping[str, str] = field(default_factory=dict)


class ChatProvider:
    """Chat completions with retries on retryable failures only."""

    def __init__(self, config: LLMConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        headers = {"Content-Type": "application/json", **config.extra_headers}
        if config.api_key:
            headers["Authorization"] = f"Bearer {config.api_key}"
        self._client = httpx.AsyncClient(
            base_url=config.base_url.rstrip("/"), headers=headers, transport=transport,
            timeout=httpx.Timeout(config.timeout_seconds, connect=min(config.timeout_seconds, 10.0)),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        response_format: Mapping[str, Any] | None = None,
        stream: bool = False,
        max_tokens: int | None = None,
        on_content: Callable[[str], None] | None = None,
    ) -> ChatResult:
        """One completion. With ``stream`` and ``on_content``, each content delta is handed over as it
        arrives; a failure after the first delta is not retried (the words are already out)."""
        body: dict[str, Any] = {"model": self.config.model, "messages": list(messages), "stream": stream}
        if self.config.temperature is not None:
            body["temperature"] = self.config.temperature
        if tools:
            body["tools"] = list(tools)
            body["tool_choice"] = "auto"
        if response_format is not None:
            body["response_format"] = dict(response_format)
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        delay = self.config.backoff_seconds
        attempt = 0
        delivered = False

        def deliver(piece: str) -> None:
            nonlocal delivered
            delivered = True
            if on_content is not None:
                on_content(piece)

        while True:
            try:
                return await (self._stream(body, deliver) if stream else self._once(body))
            except LLMUnavailable as exc:
                if attempt >= self.config.max_retries or delivered:
                    raise
                attempt += 1
                log.warning("llm_retry", attempt=attempt, error=type(exc).__name__, detail=str(exc)[:200])
                await asyncio.sleep(delay)
                delay *= 2

    async def _once(self, body: Mapping[str, Any]) -> ChatResult:
        started = time.perf_counter()
        try:
            response = await self._client.post("/chat/completions", json=body)
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            raise LLMUnavailable(f"{type(exc).__name__}: {exc}") from None
        _raise_for_status(response.status_code, response.text)
        try:
            data = response.json()
            choice = data["choices"][0]
            message = choice["message"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise LLMResponseError("not a chat completion") from None
        calls = tuple(_tool_call(c.get("id"), (c.get("function") or {}).get("name"),
                                 (c.get("function") or {}).get("arguments"))
                      for c in message.get("tool_calls") or [])
        return ChatResult(content=message.get("content") or "", tool_calls=calls,
                          finish_reason=choice.get("finish_reason"),
                          first_token_ms=(time.perf_counter() - started) * 1000)

    async def _stream(self, body: Mapping[str, Any], deliver: Callable[[str], None]) -> ChatResult:
        content: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        finish: str | None = None
        started = time.perf_counter()
        first_token_ms: float | None = None
        try:
            async with self._client.stream("POST", "/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    text = (await response.aread()).decode(errors="replace")
                    _raise_for_status(response.status_code, text)
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        break
                    try:
                        chunk = json.loads(payload)
                    except ValueError:
                        raise LLMResponseError("unreadable stream chunk") from None
                    if "error" in chunk and not chunk.get("choices"):
                        raise LLMUnavailable(f"stream error: {str(chunk['error'])[:200]}")
                    for choice in chunk.get("choices") or []:
                        delta = choice.get("delta") or {}
                        if first_token_ms is None and (delta.get("content") or delta.get("tool_calls")):
                            first_token_ms = (time.perf_counter() - started) * 1000
                        if delta.get("content"):
                            content.append(delta["content"])
                            deliver(delta["content"])
                        for part in delta.get("tool_calls") or []:
                            slot = calls.setdefault(int(part.get("index", len(calls))), {"id": None, "name": "", "args": ""})
                            slot["id"] = part.get("id") or slot["id"]
                            fn = part.get("function") or {}
                            slot["name"] += fn.get("name") or ""
                            slot["args"] += fn.get("arguments") or ""
                        finish = choice.get("finish_reason") or finish
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            raise LLMUnavailable(f"{type(exc).__name__}: {exc}") from None
        tool_calls = tuple(_tool_call(s["id"], s["name"], s["args"]) for _, s in sorted(calls.items()))
        return ChatResult(content="".join(content), tool_calls=tool_calls, finish_reason=finish,
                          first_token_ms=first_token_ms)


def _raise_for_status(status: int, text: str) -> None:
    if status < 400:
        return
    message = _error_message(text)
    if status in RETRYABLE_STATUS:
        raise LLMUnavailable(f"HTTP {status}: {message}")
    raise LLMRequestError(status, message)


def _error_message(text: str) -> str:
    try:
        error = json.loads(text).get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error)[:300]
        if error:
            return str(error)[:300]
    except (ValueError, AttributeError):
        pass
    return text[:300]


def _tool_call(call_id: Any, name: Any, arguments: Any) -> ToolCall:
    if not name:
        raise LLMResponseError("tool call without a name")
    if isinstance(arguments, Mapping):
        args: Any = dict(arguments)
    else:
        try:
            args = json.loads(arguments) if arguments else {}
        except ValueError:
            args = {}  # a model that garbles its arguments still gets its tool, with defaults
    return ToolCall(id=str(call_id or f"call_{name}"), name=str(name), arguments=args if isinstance(args, dict) else {})


def provider_from_settings(settings: Any) -> ChatProvider:
    """A provider for ``BYS_LLM_*``; raises ValueError naming what is missing."""
    missing = [n for n, v in (("BYS_LLM_BASE_URL", settings.llm_base_url), ("BYS_LLM_MODEL", settings.llm_model)) if not v]
    if missing:
        raise ValueError(f"The LLM needs {' and '.join(missing)} (an OpenAI-compatible endpoint and model name).")
    return ChatProvider(LLMConfig(
        base_url=settings.llm_base_url, model=settings.llm_model, api_key=settings.llm_api_key,
        timeout_seconds=settings.llm_timeout_seconds, max_retries=settings.llm_max_retries,
        backoff_seconds=settings.llm_backoff_seconds, temperature=settings.llm_temperature,
    ))
