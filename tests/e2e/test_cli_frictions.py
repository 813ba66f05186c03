"""Newcomer frictions of the ``byourside`` command line, run as real processes against a real server:
which store an admin command uses, refusing a store that does not exist, naming an unreachable
server, and ``byourside call``'s request options."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import byourside
import pytest

from e2e_server import BIN, free_port, start_server


def run_cli(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "byourside"), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120,
                          check=False)


def without_store_settings(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in ("BYS_DATA_DIR", "BYS_DATABASE_URL")}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A server whose store is the default ``.byourside`` under a project folder."""
    folder = tmp_path_factory.mktemp("project")
    running = start_server(folder / ".byourside")
    yield folder, running
    running.stop()


def test_admin_commands_name_their_store(project):
    folder, running = project
    result = running.cli("accounts", "list")
    assert f"byourside: store sqlite:///{(folder / '.byourside' / 'byourside.db').resolve()}\n" in result.stderr
    assert result.stdout.startswith("default\t")


def test_postgres_store_is_named_with_its_password_masked(tmp_path, project):
    _, running = project
    env = {**without_store_settings(running.env),
           "BYS_DATABASE_URL": "postgresql+asyncpg://postgres:hunter2@127.0.0.1:5432/bys_no_such_database"}
    result = run_cli("accounts", "list", env=env, cwd=tmp_path)
    assert "byourside: store postgresql+asyncpg://postgres:***@127.0.0.1:5432/bys_no_such_database" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert result.returncode == 1 and "Traceback" not in result.stderr


def test_admin_command_in_another_folder_refuses_to_create_a_store(tmp_path, project):
    folder, running = project
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = without_store_settings(running.env)
    for command in (("keys", "create", "--account", "default"), ("accounts", "create", "acme"),
                    ("users", "list", "--account", "default"), ("webhooks", "secret", "show", "--account", "default")):
        refused = run_cli(*command, env=env, cwd=elsewhere)
        assert refused.returncode == 1, command
        assert f"No byourside store at {(elsewhere / '.byourside' / 'byourside.db').resolve()}" in refused.stderr
        assert "BYS_DATA_DIR" in refused.stderr and "Traceback" not in refused.stderr
    assert not (elsewhere / ".byourside").exists()

    # From the server's folder the default store is the server's: a key minted there works.
    minted = run_cli("keys", "create", "--account", "default", env=env, cwd=folder)
    assert minted.returncode == 0, minted.stderr
    key = minted.stdout.strip().splitlines()[-1]
    assert byourside.Client(key, base_url=running.base_url).list_calls() is not None


def test_migrate_still_creates_a_new_store(tmp_path, project):
    _, running = project
    result = run_cli("migrate", env=without_store_settings(running.env), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / ".byourside" / "byourside.db").exists()
    assert run_cli("accounts", "list", env=without_store_settings(running.env), cwd=tmp_path).returncode == 0


def test_unreachable_server_is_named(project):
    _, running = project
    url = f"http://127.0.0.1:{free_port()}"
    env = {**running.env, "BYS_API_KEY": "bys_ak_" + "x" * 32, "BYS_BASE_URL": url}
    result = run_cli("call", "+14155550123", "Hi", env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"cannot reach the byourside server at {url} (connection refused)" in result.stderr
    assert "byourside serve" in result.stderr and "BYS_BASE_URL" in result.stderr


def test_call_options_reach_the_server(project):
    _, running = project
    key = running.new_key()
    env = {**running.env, "BYS_API_KEY": key, "BYS_BASE_URL": running.base_url}
    args = ("call", "+14155550123", "Ask if they have a table for two tonight",
            "--context", "We are flexible on time.",
            "--field", "table_available:boolean:whether a table is free", "--field", "price:number",
            "--metadata", "crm_id=42", "--metadata", "note=a=b",
            "--language", "en-US", "--max-duration", "120",
            "--voicemail-message", "Please call us back.", "--idempotency-key", "cli-frictions-1")
    result = run_cli(*args, env=env)
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    call = byourside.Client(key, base_url=running.base_url).get_call(created["callId"])
    assert call["context"] == "We are flexible on time."
    assert call["fields"] == [{"name": "table_available", "type": "boolean", "description": "whether a table is free"},
                              {"name": "price", "type": "number", "description": None}]
    assert call["metadata"] == {"crm_id": "42", "note": "a=b"}
    assert call["language"] == "en-US" and call["maxDurationSeconds"] == 120
    assert call["voicemailMessage"] == "Please call us back."

    again = run_cli(*args, env=env)  # the same idempotency key returns the same call
    assert again.returncode == 0 and json.loads(again.stdout)["callId"] == created["callId"]


def test_invalid_call_options_get_the_servers_token_and_message(project):
    _, running = project
    env = {**running.env, "BYS_API_KEY": running.new_key(), "BYS_BASE_URL": running.base_url}
    result = run_cli("call", "+14155550123", "Hi", "--max-duration", "1", env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "[invalid_request]" in result.stderr and "maxDurationSeconds" in result.stderr

    bad_metadata = run_cli("call", "+14155550123", "Hi", "--metadata", "no-equals-sign", env=env)
    assert bad_metadata.returncode == 1 and "key=value" in bad_metadata.stderr and "Traceback" not in bad_metadata.stderr
