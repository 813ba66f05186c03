"""A recording made by a worker process is served by an API process on another data directory,
through the S3 store: via the signed recordingUrl (no key) and via the Bearer key.

The two processes share only PostgreSQL and the S3 server, as in the scaled-out deployment.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from e2e_server import _reset_postgres, start_server
from recording_worker import write_recording

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

WORKER = Path(__file__).with_name("recording_worker.py")


def _wait_ended(api: httpx.Client, call_id: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout  # a safety net for a loaded machine, not a speed requirement
    while time.monotonic() < deadline:
        call = api.get(f"/v1/agent/calls/{call_id}").json()
        if call["status"] in {"completed", "failed", "voicemail", "no_answer", "declined"}:
            return call
        time.sleep(0.1)
    raise AssertionError(f"call {call_id} did not end")


def test_worker_recording_is_fetched_by_an_api_on_another_data_dir(s3_server, postgres_url, tmp_path):
    _reset_postgres(postgres_url)
    api_dir, worker_dir = tmp_path / "api", tmp_path / "worker"
    server = start_server(api_dir, postgres_url, "--no-workers", **s3_server.env())
    worker_dir.mkdir()
    worker_log = open(worker_dir / "worker.log", "w")
    worker = subprocess.Popen([sys.executable, str(WORKER)], env={**server.env, "BYS_DATA_DIR": str(worker_dir)},
                              stdout=worker_log, stderr=subprocess.STDOUT)
    try:
        key = server.new_key()
        with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as api:
            placed = api.post("/v1/agent/calls", json={"to": "+14155550123", "objective": "Ask for the hours."})
            call_id = placed.json()["callId"]
            call = _wait_ended(api, call_id)
            assert call["status"] == "completed", (call, (worker_dir / "worker.log").read_text())

            write_recording(tmp_path / "expected.wav")
            expected = (tmp_path / "expected.wav").read_bytes()
            # The audio lives in S3 only: neither process keeps a copy on its disk.
            assert not list((worker_dir / "recordings").glob("*.wav"))
            assert not (api_dir / "recordings").exists()

            with_key = api.get(f"/v1/agent/calls/{call_id}/recording")
            assert with_key.status_code == 200 and with_key.headers["content-type"] == "audio/wav"
            assert with_key.content == expected

            url = call["recordingUrl"]
            assert url.startswith(server.base_url) and "token=" in url
            signed = httpx.get(url, timeout=30)  # no key: the signed link alone
            assert signed.status_code == 200 and signed.content == expected
            tampered = httpx.get(url[:-4] + ("0000" if not url.endswith("0000") else "1111"), timeout=30)
            assert tampered.status_code == 401
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        server.stop()
    # The row holds the S3 reference, not a path on the worker's disk.
    assert f"s3://{s3_server.bucket}/calls/{call_id}.wav" == _stored_reference(postgres_url, call_id)


def _stored_reference(url: str, call_id: str) -> str | None:
    import asyncio

    from byourside_server.store.database import open_database

    async def read() -> str | None:
        db = open_database(url)
        try:
            from byourside_server.store.calls import CallRepo
            from byourside_server.clock import SystemClock

            call = await CallRepo(db, SystemClock()).get_any(call_id)
            return call.recording_path if call else None
        finally:
            await db.dispose()

    return asyncio.run(read())
