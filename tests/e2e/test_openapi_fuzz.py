"""schemathesis against the running server's own /openapi.json: no generated request may cause a 5xx.

Uses schemathesis' Python API with hypothesis directly (its pytest plugin does
not support the pytest version in use).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from e2e_server import start_server


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    running = start_server(tmp_path_factory.mktemp("fuzz"), None)
    running.key = running.new_key()
    yield running
    running.stop()


def test_no_server_errors(fuzz_server):
    schema = schemathesis.openapi.from_url(f"{fuzz_server.base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 5
    for operation in operations:
        for headers in ({"Authorization": f"Bearer {fuzz_server.key}"}, {}):

            @given(case=operation.as_strategy())
            @settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            def check(case):
                response = case.call(headers=headers, timeout=10)
                case.validate_response(response, checks=[not_a_server_error])
                assert "Traceback" not in response.text

            check()
