"""A real S3-compatible server for tests: moto's standalone server as a subprocess on loopback.

Signatures are checked (``INITIAL_NO_AUTH_ACTION_COUNT``): the first few requests,
unauthenticated, create an IAM user with an access key allowed ``s3:*``; every
request after them must be signed with that key.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

SETUP_ACTIONS = 3  # create_user, create_access_key, put_user_policy


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    region: str
    access_key_id: str
    secret_access_key: str
    bucket: str

    def env(self) -> dict[str, str]:
        """The BYS_ settings that point a byourside process at this server."""
        return {
            "BYS_RECORDING_STORE": "s3",
            "BYS_S3_ENDPOINT_URL": self.endpoint_url,
            "BYS_S3_BUCKET": self.bucket,
            "BYS_S3_REGION": self.region,
            "BYS_S3_ACCESS_KEY_ID": self.access_key_id,
            "BYS_S3_SECRET_ACCESS_KEY": self.secret_access_key,
            "BYS_S3_PREFIX": "calls/",
        }

    def overrides(self) -> dict[str, object]:
        return {k[4:].lower(): v for k, v in self.env().items()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, process: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("moto server did not start listening")


def _make_user(endpoint_url: str, region: str) -> tuple[str, str]:
    import boto3

    iam = boto3.client("iam", endpoint_url=endpoint_url, region_name=region,
                       aws_access_key_id="setup", aws_secret_access_key="setup")
    iam.create_user(UserName="byourside")
    key = iam.create_access_key(UserName="byourside")["AccessKey"]
    iam.put_user_policy(
        UserName="byourside", PolicyName="s3",
        PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}',
    )
    return key["AccessKeyId"], key["SecretAccessKey"]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    import asyncio

    from byourside_server.recordings.s3 import S3Client

    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_ACTIONS)}
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                   env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_listening(port, process, log)
        endpoint, region = f"http://127.0.0.1:{port}", "us-east-1"
        key_id, secret = _make_user(endpoint, region)
        bucket = f"bys-{uuid.uuid4().hex[:10]}"

        async def create_bucket() -> None:
            client = S3Client(endpoint, region, key_id, secret)
            try:
                await client.create_bucket(bucket)
            finally:
                await client.aclose()

        asyncio.run(create_bucket())
        yield S3Server(endpoint, region, key_id, secret, bucket)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
