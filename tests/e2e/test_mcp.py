"""The MCP server, driven by the official ``mcp`` client against the real ``byourside serve``.

Over stdio (spawning ``byourside mcp`` with BYS_API_KEY/BYS_BASE_URL) and over
streamable HTTP at the server's ``/mcp`` with the agent key as Bearer token: list the
tools, place a call on the simulator, wait for it, read the result; bad input comes
back as a tool error carrying the API token; a missing or wrong key on /mcp is a 401.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from e2e_server import BIN, RunningServer, start_server
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

pytestmark = pytest.mark.e2e

TOOLS = {"place_call", "get_call", "list_calls", "wait_for_call", "cancel_call", "list_voices", "create_batch",
         "get_batch", "cancel_batch"}
FIELDS = [{"name": "confirmed", "type": "boolean", "description": "Was it confirmed?"}]


@pytest.fixture(scope="module")
def mcp_server(tmp_path_factory: pytest.TempPathFactory):
    running = start_server(tmp_path_factory.mktemp("mcp"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def key(mcp_server: RunningServer) -> str:
    return mcp_server.new_key()


@asynccontextmanager
async def stdio_session(server: RunningServer, key: str) -> AsyncIterator[ClientSession]:
    env = dict(server.env, BYS_API_KEY=key, BYS_BASE_URL=server.base_url)
    params = StdioServerParameters(command=str(BIN / "byourside"), args=["mcp"], env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@asynccontextmanager
async def http_session(server: RunningServer, key: str) -> AsyncIterator[ClientSession]:
    http = httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=httpx.Timeout(30, read=300))
    async with (
        http,
        streamable_http_client(f"{server.base_url}/mcp", http_client=http) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


SESSIONS = {"stdio": stdio_session, "http": http_session}


def payload(result: Any) -> Any:
    assert len(result.content) == 1 and result.content[0].type == "text"
    return json.loads(result.content[0].text)


@pytest.mark.parametrize("transport", sorted(SESSIONS))
async def test_place_wait_and_read_a_call(transport: str, mcp_server: RunningServer, key: str) -> None:
    async with SESSIONS[transport](mcp_server, key) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert set(tools) == TOOLS
        assert set(tools["place_call"].inputSchema["properties"]) == {
            "to", "objective", "context", "fields", "caller_id", "voice", "language", "transfer_to", "transfer_mode"}
        assert set(tools["wait_for_call"].inputSchema["properties"]) == {"call_id", "timeout_seconds"}
        assert set(tools["list_calls"].inputSchema["properties"]) == {"limit", "status"}

        placed = await session.call_tool("place_call", {
            "to": "+14155550123", "objective": f"Confirm the booking ({transport})", "fields": FIELDS,
            "language": "en-US"})
        assert not placed.isError, placed.content
        created = payload(placed)
        assert created["status"] == "queued" and created["callId"]

        progress: list[tuple[float, str | None]] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append((value, message))

        waited = await session.call_tool(
            "wait_for_call", {"call_id": created["callId"], "timeout_seconds": 60}, progress_callback=on_progress)
        assert not waited.isError, waited.content
        call = payload(waited)
        assert call["callId"] == created["callId"]
        assert call["status"] == "completed"
        assert call["summary"] and call["transcript"]
        assert "confirmed" in call["extracted"]
        assert "hint" not in call
        assert progress and progress[-1] == (3, "status: completed")
        assert [v for v, _ in progress] == sorted(v for v, _ in progress)

        got = payload(await session.call_tool("get_call", {"call_id": created["callId"]}))
        assert got["status"] == "completed" and got["summary"] == call["summary"]

        listed = payload(await session.call_tool("list_calls", {"limit": 5, "status": "completed"}))
        assert created["callId"] in [c["callId"] for c in listed["calls"]]
        assert all(c["status"] == "completed" for c in listed["calls"])

        cancel = await session.call_tool("cancel_call", {"call_id": created["callId"]})
        assert cancel.isError
        assert payload(cancel)["error"] == "call_not_active"


@pytest.mark.parametrize("transport", sorted(SESSIONS))
async def test_list_voices_names_what_place_call_accepts(transport: str, mcp_server: RunningServer, key: str) -> None:
    async with SESSIONS[transport](mcp_server, key) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert tools["list_voices"].inputSchema.get("properties", {}) == {}
        listed = await session.call_tool("list_voices", {})
        assert not listed.isError, listed.content
        catalogue = payload(listed)
        # the local engine's voices: the packaged Piper voice in English, espeak-ng in the other languages
        assert [v["name"] for v in catalogue["voices"]] == ["joe", "espeak"]
        assert {"fr", "he"} <= set(catalogue["voices"][1]["languages"])
        assert catalogue["voices"][0] == {"name": "joe", "provider": "piper", "languages": ["en"], "gender": "male"}
        assert catalogue["default"] == "alloy" and "shimmer" in catalogue["aliases"]
        refused = await session.call_tool("place_call", {"to": "+14155550123", "objective": "x", "voice": "Bob"})
        assert refused.isError and payload(refused)["error"] == "invalid_voice"


@pytest.mark.parametrize("transport", sorted(SESSIONS))
async def test_place_call_hands_the_callee_to_a_person(transport: str, mcp_server: RunningServer, key: str) -> None:
    async with SESSIONS[transport](mcp_server, key) as session:
        schema = {t.name: t for t in (await session.list_tools()).tools}["place_call"].inputSchema["properties"]
        assert "real person" in schema["transfer_to"]["description"]
        assert "brief" in schema["transfer_mode"]["description"]
        placed = await session.call_tool("place_call", {
            "to": "+14155550134",  # the simulator's callee who asks for a real person
            "objective": f"Ask when the policy renewal is due ({transport})",
            "transfer_to": ["+14155550161", "+14155550100"],  # busy, then a line that answers
            "transfer_mode": "warm"})
        assert not placed.isError, placed.content
        waited = await session.call_tool("wait_for_call", {"call_id": payload(placed)["callId"], "timeout_seconds": 60})
        call = payload(waited)
        assert (call["status"], call["endReason"]) == ("completed", "transferred"), call
        assert (call["transferTo"], call["transferMode"]) == (["+14155550161", "+14155550100"], "warm")

        itself = await session.call_tool("place_call", {
            "to": "+14155550123", "objective": "x", "transfer_to": ["+14155550123"]})
        assert itself.isError and payload(itself)["error"] == "invalid_transfer_to"
        lukewarm = await session.call_tool("place_call", {
            "to": "+14155550123", "objective": "x", "transfer_to": ["+14155550100"], "transfer_mode": "lukewarm"})
        assert lukewarm.isError and payload(lukewarm)["error"] == "invalid_request"
        assert "transfer_mode" in payload(lukewarm)["message"]


@pytest.mark.parametrize("transport", sorted(SESSIONS))
async def test_bad_input_comes_back_as_tool_errors(transport: str, mcp_server: RunningServer, key: str) -> None:
    async with SESSIONS[transport](mcp_server, key) as session:
        for number, token in (("4155550123", "invalid_number"), ("+19001234567", "destination_blocked")):
            result = await session.call_tool("place_call", {"to": number, "objective": "Say hello"})
            assert result.isError
            error = payload(result)
            assert error["error"] == token and error["status"] == 400 and error["message"]

        missing = await session.call_tool("get_call", {"call_id": "no such call"})
        assert missing.isError and payload(missing)["error"] == "not_found"

        bad_fields = await session.call_tool(
            "place_call", {"to": "+14155550123", "objective": "x", "fields": [{"name": "a b", "type": "date"}]})
        assert bad_fields.isError and payload(bad_fields)["error"] == "invalid_fields"

        wrong_type = await session.call_tool("place_call", {"to": 14155550123, "objective": "x"})
        assert wrong_type.isError
        assert payload(wrong_type)["error"] == "invalid_request" and "to" in payload(wrong_type)["message"]
        no_objective = await session.call_tool("place_call", {"to": "+14155550123"})
        assert no_objective.isError and payload(no_objective)["error"] == "invalid_request"

        # the session survives every error
        assert not (await session.call_tool("list_calls", {"limit": 1})).isError


async def test_wait_is_bounded_and_hints_to_call_again(mcp_server: RunningServer, key: str) -> None:
    # A server without workers: its calls stay queued, so the bound always passes first.
    paused = start_server(mcp_server.log_path.parent / "no-workers", None, "--no-workers")
    try:
        paused_key = paused.new_key()
        async with http_session(paused, paused_key) as session:
            created = payload(await session.call_tool("place_call", {"to": "+14155550123", "objective": "Hello"}))
            waited = await session.call_tool("wait_for_call", {"call_id": created["callId"], "timeout_seconds": 0.5})
            assert not waited.isError
            call = payload(waited)
            assert call["status"] == "queued" and "wait_for_call again" in call["hint"]
            cancelled = payload(await session.call_tool("cancel_call", {"call_id": created["callId"]}))
            assert cancelled["callId"] == created["callId"]
    finally:
        paused.stop()


async def test_http_tools_act_on_the_presented_keys_account(mcp_server: RunningServer, key: str) -> None:
    mcp_server.cli("accounts", "create", "other")
    other_key = mcp_server.new_key("other")
    async with http_session(mcp_server, key) as mine:
        created = payload(await mine.call_tool("place_call", {"to": "+14155550123", "objective": "Mine"}))
    async with http_session(mcp_server, other_key) as theirs:
        peek = await theirs.call_tool("get_call", {"call_id": created["callId"]})
        assert peek.isError and payload(peek)["error"] == "not_found"
        assert created["callId"] not in [c["callId"] for c in payload(await theirs.call_tool("list_calls", {}))["calls"]]
        placed = await theirs.call_tool("place_call", {"to": "+14155550123", "objective": "Theirs"})
        assert placed.isError and payload(placed)["error"] == "caller_id_not_owned"


@pytest.mark.parametrize("authorization", [None, "Bearer bys_ak_not_a_real_key", "Basic abc"])
def test_mcp_over_http_needs_the_agent_key(mcp_server: RunningServer, authorization: str | None) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    request = urllib.request.Request(f"{mcp_server.base_url}/mcp", data=body, method="POST", headers={
        "Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
    if authorization:
        request.add_header("Authorization", authorization)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401
    assert json.loads(refused.value.read())["error"] == "unauthorized"


def test_revoked_key_is_refused_on_mcp(mcp_server: RunningServer) -> None:
    secret = mcp_server.new_key()
    mcp_server.cli("keys", "revoke", "--account", "default", secret)
    request = urllib.request.Request(f"{mcp_server.base_url}/mcp", data=b"{}", method="POST", headers={
        "Authorization": f"Bearer {secret}", "Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401


async def test_stdio_reports_an_unreachable_server_as_a_tool_error(mcp_server: RunningServer, key: str) -> None:
    from e2e_server import free_port

    gone = RunningServer(f"http://127.0.0.1:{free_port()}", mcp_server.env, mcp_server.process, mcp_server.log_path)
    async with stdio_session(gone, key) as session:
        result = await session.call_tool("get_call", {"call_id": "c1"})
        assert result.isError
        assert payload(result) == {
            "error": "network_error", "status": 0,
            "message": f"Temporary service error. Please retry shortly. Could not reach the byourside server at "
                       f"{gone.base_url}; check BYS_BASE_URL and that the server is running."}


def test_stdio_without_a_key_exits_with_a_clear_error(mcp_server: RunningServer) -> None:
    import subprocess

    env = {k: v for k, v in mcp_server.env.items() if k != "BYS_API_KEY"}
    result = subprocess.run([str(BIN / "byourside"), "mcp"], check=False, env=env, input="", capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 1
    assert "BYS_API_KEY" in result.stderr and "Traceback" not in result.stderr
