"""schemathesis with every check (``--checks all``) against the running server, on SQLite and
PostgreSQL: no 5xx, every status documented, every body and header as documented, schema-valid
input accepted (save the contract rules a schema cannot state, see schemathesis.toml),
schema-invalid input refused, auth enforced, 405 with ``Allow``.

Runs schemathesis' own CLI (its pytest plugin does not support the pytest version in use) with a
fixed seed, deterministic generation and a bounded number of examples, so CI is reproducible.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

import pytest

from e2e_server import BIN, _reset_postgres, start_server

CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def fuzz_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    if url:
        _reset_postgres(url)
    running = start_server(tmp_path_factory.mktemp(f"fuzz-{request.param}"), url)
    running.key = running.new_key()
    # Something to read, list and cancel: one finished call and one that ends while the run goes on.
    for objective in ("Ask for the opening hours", "Ask whether they deliver"):
        body = json.dumps({"to": "+14155550123", "objective": objective}).encode()
        req = urllib.request.Request(f"{running.base_url}/v1/agent/calls", data=body, method="POST", headers={
            "Authorization": f"Bearer {running.key}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as response:
            assert response.status == 201
    yield running
    running.stop()


def test_served_document_is_the_exact_one(fuzz_server):
    with urllib.request.urlopen(f"{fuzz_server.base_url}/openapi.json", timeout=30) as response:
        document = json.load(response)
    assert "bearerAuth" in document.get("components", {}).get("securitySchemes", {}), \
        "api/app.py must serve api/openapi.py's openapi_document (app.openapi = lambda: openapi_document(app))"
    create = document["paths"]["/v1/agent/calls"]["post"]
    assert set(create["responses"]) == {"201", "400", "401", "403", "404", "405", "409", "429", "502", "503"}


def test_schemathesis_every_check(fuzz_server, tmp_path: Path):
    result = subprocess.run(
        [str(BIN / "schemathesis"), "--no-color", "--config-file", str(CONFIG), "run",
         f"{fuzz_server.base_url}/openapi.json",
         "--checks", "all",
         "--header", f"Authorization: Bearer {fuzz_server.key}",
         "--phases", "examples,coverage,fuzzing",
         "--max-examples", "25", "--seed", "20261201", "--generation-deterministic",  # (no example database)
         "--request-timeout", "20",  # a hang detector, not a speed requirement
         "--report-dir", str(tmp_path), "--warnings", "off"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-12000:] + result.stderr[-3000:]
    log = fuzz_server.log()
    assert "Traceback" not in log and "unhandled_error" not in log, log[-5000:]
