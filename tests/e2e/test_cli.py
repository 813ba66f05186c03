"""The ``byourside`` command line, run as a real process against a real server."""

from __future__ import annotations

import json
import subprocess

import byourside
import pytest

from e2e_server import BIN, start_server


@pytest.fixture(scope="module")
def cli_server(tmp_path_factory):
    running = start_server(tmp_path_factory.mktemp("cli"))
    yield running
    running.stop()


def test_accounts_numbers_and_keys_lifecycle(cli_server):
    out = cli_server.cli("accounts", "create", "acme").stdout
    assert "Created account 'acme'" in out
    dup = cli_server.cli("accounts", "create", "acme", check=False)
    assert dup.returncode == 1 and "already exists" in dup.stderr and "Traceback" not in dup.stderr

    bad = cli_server.cli("numbers", "add", "--account", "acme", "+1 415 555", check=False)
    assert bad.returncode == 1 and "E.164" in bad.stderr and "Traceback" not in bad.stderr
    cli_server.cli("numbers", "add", "--account", "acme", "+14155550101")
    cli_server.cli("numbers", "add", "--account", "acme", "+14155550102")
    cli_server.cli("numbers", "default", "--account", "acme", "+14155550102")
    listed = cli_server.cli("numbers", "list", "--account", "acme").stdout.splitlines()
    assert listed == ["+14155550101", "+14155550102\t(default)"]
    missing = cli_server.cli("numbers", "default", "--account", "acme", "+14155550109", check=False)
    assert missing.returncode == 1 and "add it first" in missing.stderr

    limits = cli_server.cli("accounts", "limits", "acme", "--calls-per-minute", "7").stdout
    assert "7 calls/min" in limits

    key = cli_server.new_key("acme")
    assert key.startswith("bys_ak_") and len(key) >= 39
    client = byourside.Client(key, base_url=cli_server.base_url)
    call = client.get_call(client.place_call("+14155550123", "Ask about tables.")["callId"])
    assert call["from"] == "+14155550102"

    keys = cli_server.cli("keys", "list", "--account", "acme").stdout
    assert key not in keys and f"{key[:11]}...{key[-4:]}" in keys and "active" in keys
    cli_server.cli("keys", "revoke", "--account", "acme", f"{key[:11]}...{key[-4:]}")
    assert "revoked" in cli_server.cli("keys", "list", "--account", "acme").stdout
    with pytest.raises(byourside.ByoursideError) as err:
        client.list_calls()
    assert err.value.code == "unauthorized"

    unknown = cli_server.cli("keys", "create", "--account", "nobody", check=False)
    assert unknown.returncode == 1 and "accounts create nobody" in unknown.stderr


def test_call_wait_streams_status_changes(cli_server):
    env = {**cli_server.env, "BYS_API_KEY": cli_server.new_key(), "BYS_BASE_URL": cli_server.base_url}
    result = subprocess.run(
        [str(BIN / "byourside"), "call", "+14155550123", "Ask if they have a table for two tonight",
         "--field", "table_available:boolean:whether a table for two is free tonight", "--wait"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    statuses = [line.split("] ")[1].split()[0] for line in result.stderr.splitlines() if "s] " in line]
    assert statuses[0] == "queued" and statuses[-1] == "completed"
    assert "Contact:" in result.stderr
    call = json.loads(result.stdout)
    assert call["status"] == "completed" and call["extracted"] == {"table_available": True}


def test_call_without_key_says_what_to_do(cli_server):
    env = {k: v for k, v in cli_server.env.items() if k != "BYS_API_KEY"}
    result = subprocess.run([str(BIN / "byourside"), "call", "+14155550123", "Hi"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "BYS_API_KEY" in result.stderr and "Traceback" not in result.stderr


def test_call_rejected_shows_the_token(cli_server):
    env = {**cli_server.env, "BYS_API_KEY": cli_server.new_key(), "BYS_BASE_URL": cli_server.base_url}
    result = subprocess.run([str(BIN / "byourside"), "call", "+18765550123", "Hi"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "destination_blocked" in result.stderr


def test_server_log_keeps_numbers_and_objectives_out(cli_server):
    env = {**cli_server.env, "BYS_API_KEY": cli_server.new_key(), "BYS_BASE_URL": cli_server.base_url}
    subprocess.run([str(BIN / "byourside"), "call", "+14155550123", "Ask about tables for two", "--wait"],
                   env=env, capture_output=True, text=True, timeout=120, check=True)
    log = cli_server.log()
    assert "call_ended" in log
    for secret_text in ("+14155550123", "table for two", "Ask about tables", "bys_ak_"):
        assert secret_text not in log


def test_demo_command_finishes_a_call(tmp_path):
    env = {"PATH": str(BIN), "BYS_DATA_DIR": str(tmp_path)}
    result = subprocess.run([str(BIN / "byourside"), "demo", "--time-scale", "0"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    call = json.loads(result.stdout)
    assert call["status"] == "completed" and call["objectiveMet"] is True
    assert call["extracted"] == {"table_available": True, "tasting_menu_price": 85}
    assert "completed (objective_met)" in result.stderr and "Agent  :" in result.stderr
