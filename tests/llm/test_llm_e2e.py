"""The real ``byourside serve`` process picks the LLM brain from BYS_LLM_* and conducts a
call through the fake OpenAI server; nothing else changes for the client."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from e2e_server import start_server  # noqa: E402
from fake_openai import FakeOpenAI, analysis, say, tool  # noqa: E402

pytestmark = pytest.mark.e2e


def test_server_process_uses_the_configured_llm(tmp_path):
    fake = FakeOpenAI().start()
    fake.chat += [
        say("Hi, this is an AI assistant calling on behalf of default. How much is the tasting menu?"),
        tool("end_call", "Thank you, goodbye!", outcome="objective_met", reason="Got the price."),
    ]
    fake.analysis.append(analysis("The tasting menu is $85 per person.", True, {"menu_price": 85},
                                  {"menu_price": {"quote": "eighty-five dollars per person", "turnIndex": 2}}))
    server = start_server(tmp_path / "data", None, BYS_LLM_BASE_URL=fake.base_url, BYS_LLM_MODEL="fake-model",
                          BYS_LLM_API_KEY="sk-e2e")
    try:
        key = server.new_key()
        headers = {"Authorization": f"Bearer {key}"}
        body = {"to": "+14155550123", "objective": "Ask the tasting menu price.",
                "fields": [{"name": "menu_price", "type": "number"}]}
        created = httpx.post(f"{server.base_url}/v1/agent/calls", json=body, headers=headers, timeout=10)
        assert created.status_code in (200, 201), created.text
        call_id = created.json()["callId"]
        for _ in range(300):
            call = httpx.get(f"{server.base_url}/v1/agent/calls/{call_id}", headers=headers, timeout=10).json()
            if call["status"] not in ("queued", "dialing", "in_progress"):
                break
            time.sleep(0.05)
        assert call["status"] == "completed" and call["endReason"] == "objective_met"
        assert call["extracted"] == {"menu_price": 85}
        assert call["evidence"] == {"menu_price": {"quote": "eighty-five dollars per person", "turnIndex": 2}}
        assert fake.headers[0]["authorization"] == "Bearer sk-e2e"
        assert fake.chat_requests[0]["model"] == "fake-model"
        assert "brain=llm" in server.log()
    finally:
        server.stop()
        fake.stop()
