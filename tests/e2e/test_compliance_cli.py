"""``byourside suppressions`` and ``byourside calling-hours``, run as real processes beside a real server."""

from __future__ import annotations

import byourside
import pytest

from e2e_server import start_server


@pytest.fixture(scope="module")
def cli_server(tmp_path_factory):
    running = start_server(tmp_path_factory.mktemp("compliance-cli"))
    yield running
    running.stop()


def test_the_do_not_call_list_from_the_command_line(cli_server, tmp_path):
    added = cli_server.cli("suppressions", "add", "--account", "default", "+14155551234", "+12125551234",
                           "--note", "asked by letter").stdout
    assert "Added 2 number(s)" in added
    bad = cli_server.cli("suppressions", "add", "--account", "default", "415 555 1234", check=False)
    assert bad.returncode == 1 and "E.164" in bad.stderr and "Traceback" not in bad.stderr

    csv_file = tmp_path / "dnc.csv"
    csv_file.write_text("number\n+442071234567\nnot a number\n+14155551234\n")
    imported = cli_server.cli("suppressions", "import", "--account", "default", str(csv_file))
    assert "Added 1 number(s)" in imported.stdout and "1 already on it, 1 row(s) rejected" in imported.stdout
    assert "row 3: invalid_number" in imported.stderr
    missing = cli_server.cli("suppressions", "import", "--account", "default", str(tmp_path / "none.csv"), check=False)
    assert missing.returncode == 1 and "Cannot read" in missing.stderr

    listed = cli_server.cli("suppressions", "list", "--account", "default").stdout.splitlines()
    assert [line.split("\t")[:2] for line in listed] == [
        ["+12125551234", "cli"], ["+14155551234", "cli"], ["+442071234567", "csv"]]

    client = byourside.Client(cli_server.new_key(), base_url=cli_server.base_url)
    with pytest.raises(byourside.ByoursideError) as refused:
        client.place_call("+14155551234", "Confirm the appointment.")
    assert refused.value.status == 403 and refused.value.code == "destination_suppressed"

    cli_server.cli("suppressions", "remove", "--account", "default", "+14155551234")
    again = cli_server.cli("suppressions", "remove", "--account", "default", "+14155551234", check=False)
    assert again.returncode == 1 and "not on the do-not-call list" in again.stderr


def test_calling_hours_from_the_command_line(cli_server):
    shown = cli_server.cli("calling-hours", "show", "--account", "default").stdout
    assert "08:00-21:00 mon,tue,wed,thu,fri,sat,sun" in shown and "server default" in shown
    changed = cli_server.cli("calling-hours", "set", "--account", "default", "--start", "09:00", "--end", "17:30",
                             "--days", "mon-fri").stdout
    assert "09:00-17:30 mon,tue,wed,thu,fri" in changed and "set for the account" in changed
    bad = cli_server.cli("calling-hours", "set", "--account", "default", "--start", "18:00", "--end", "09:00",
                         check=False)
    assert bad.returncode == 1 and "start before they end" in bad.stderr and "Traceback" not in bad.stderr
    reset = cli_server.cli("calling-hours", "reset", "--account", "default").stdout
    assert "server default" in reset


def test_the_python_sdk_methods_for_batches_and_the_do_not_call_list(cli_server):
    client = byourside.Client(cli_server.new_key(), base_url=cli_server.base_url)
    assert client.add_suppressions(["+12125550188"], note="sdk") == {"added": 1, "alreadyListed": 0}
    page = client.list_suppressions(limit=100)
    assert "+12125550188" in [s["number"] for s in page["suppressions"]]
    batch = client.create_batch([{"to": "+14155550123"}, {"to": "+12125550188"}, {"to": "+14155550100"}],
                                {"objective": "Ask for the opening hours", "scheduledAt": "2099-01-01T10:00:00Z"})
    assert batch["total"] == 0 and [r["error"] for r in batch["rejectedRows"]] == ["invalid_request"] * 3  # > 90 days
    batch = client.create_batch([{"to": "+14155550123"}, {"to": "+12125550188"}],
                                {"objective": "Ask for the opening hours", "scheduledAt": "2026-12-31T10:00:00Z"})
    assert batch["total"] == 1 and batch["rejectedRows"][0]["error"] == "destination_suppressed"
    assert client.get_batch(batch["batchId"])["counts"]["queued"] == 1
    assert batch["batchId"] in [b["batchId"] for b in client.list_batches()]
    canceled = client.cancel_batch(batch["batchId"])
    assert canceled["status"] == "canceled" and canceled["counts"]["failed"] == 1
    assert client.remove_suppression("+12125550188") == {"removed": True}
    with pytest.raises(byourside.ByoursideError) as missing:
        client.get_batch("no-such-batch")
    assert missing.value.status == 404
