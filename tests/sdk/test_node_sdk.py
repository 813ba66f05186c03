"""The Node SDK's own tests (unit, and against a real `byourside serve` it starts) as part of the suite."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import IN_CI

ROOT = Path(__file__).resolve().parents[2]


def test_the_node_sdk_passes_its_tests() -> None:
    node = shutil.which("node")
    if node is None:
        message = "node (18+) is needed for the Node SDK's tests: apt-get install -y nodejs"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    tests = sorted(str(p) for p in (ROOT / "sdks" / "node" / "test").glob("*.test.js"))
    assert tests, "no Node SDK tests found under sdks/node/test"
    run = subprocess.run([node, "--test", *tests], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"})
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "# fail 0" in run.stdout and "# skipped 0" in run.stdout, run.stdout[-2000:]
