"""Calls that make a recording, conducted by a real worker and the offline agent: what the consent,
retention and deletion tests share.

``RecordingTelephony`` answers every call with a scripted ``FakeLine`` that writes an audio file
as an audio line's recorder does (``recording_path`` names it from the answer on).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from fakes import FakeLine, FakeTelephony
from support import auth, running

from byourside_server.agent.offline import OfflineBrain
from byourside_server.compliance.consent import ConsentPolicy
from byourside_server.domain import TERMINAL_STATUSES
from byourside_server.runtime.session import SessionDeps
from byourside_server.runtime.worker import Worker
from byourside_server.services import Services
from byourside_server.telephony.base import DialOutcome, DialRequest, DialResult

REPLIES = ("Hello, Copper Pot, how can I help?", "We open at nine tomorrow morning.")


class RecordedLine(FakeLine):
    """Writes its audio file from the answer on, as an audio line's recorder does; none when the dial
    request says not to record (``DialRequest.record``)."""

    def __init__(self, path: Path | None, replies: Sequence[str]) -> None:
        super().__init__(replies)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"RIFF recorded call audio")
        self.path = path

    def recording_path(self) -> str | None:
        return str(self.path) if self.path is not None else None


class RecordingTelephony(FakeTelephony):
    def __init__(self, directory: Path, replies: Sequence[str] = REPLIES) -> None:
        super().__init__(replies=replies)
        self.directory = directory
        self.requests: dict[str, DialRequest] = {}

    async def dial(self, request: DialRequest) -> DialOutcome:
        self.dials[request.call_id] += 1
        self.requests[request.call_id] = request
        line = RecordedLine(self.directory / f"{request.call_id}.wav" if request.record else None, self.replies)
        self.lines[request.call_id] = line
        return DialOutcome(DialResult.ANSWERED, line=line)


def call_worker(services: Services, telephony: FakeTelephony) -> Worker:
    deps = SessionDeps(calls=services.calls, telephony=telephony, brain=OfflineBrain(), ring_timeout_seconds=5,
                       recordings=services.recordings, gate=services.compliance,
                       consent=ConsentPolicy.from_settings(services.settings))
    return Worker(services, deps, concurrency=2)


async def place_and_conduct(services: Services, api: httpx.AsyncClient, secret: str, telephony: FakeTelephony,
                            body: dict[str, Any], timeout: float = 300.0) -> dict[str, Any]:
    """Place ``body`` through the API and conduct it with a real worker until it ends; the call as GET shows it.

    ``timeout`` is a safety net for a slow machine, not a speed requirement."""
    created = await api.post("/v1/agent/calls", json=body, headers=auth(secret))
    assert created.status_code == 201, created.text
    call_id = created.json()["callId"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with running(call_worker(services, telephony)):
        while (call := (await api.get(f"/v1/agent/calls/{call_id}", headers=auth(secret))).json())["status"] \
                not in {s.value for s in TERMINAL_STATUSES}:
            assert loop.time() < deadline, f"the call is still {call['status']}"
            await asyncio.sleep(0.05)
    return call


def agent_turns(call: dict[str, Any]) -> list[str]:
    return [turn["text"] for turn in call["turns"] or () if turn["speaker"] == "agent"]
