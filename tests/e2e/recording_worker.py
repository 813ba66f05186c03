"""A worker process whose line records audio: ``python recording_worker.py`` with BYS_* in the environment.

It is ``byourside worker`` with one change, the telephony: a scripted line (tests/fakes.py)
that, like the voice engine, writes the call's stereo WAV under ``<data_dir>/recordings``
with the real recorder and reports its path. Runs until SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from byourside_server.runtime.session import SessionDeps  # noqa: E402
from byourside_server.runtime.worker import Worker  # noqa: E402
from byourside_server.server import prepare  # noqa: E402
from byourside_server.settings import Settings  # noqa: E402
from byourside_server.telephony.base import DialOutcome, DialRequest, DialResult  # noqa: E402
from byourside_server.voice.recorder import StereoRecorder  # noqa: E402
from fakes import EchoBrain, FakeLine, FakeTelephony  # noqa: E402

FRAMES = 50  # one second of 20 ms frames at 8 kHz


def write_recording(path: Path) -> None:
    """The audio every call of this worker records (the test writes the same to compare)."""
    recorder = StereoRecorder(path)
    for n in range(FRAMES):
        callee = (np.arange(160, dtype=np.int32) * (n + 1) % 20000).astype("<i2")
        recorder.write(callee, (-callee).astype("<i2"))
    recorder.close()


class RecordedLine(FakeLine):
    def __init__(self, path: Path) -> None:
        super().__init__(("Hello?", "Yes, we open at nine."))
        self.path = path

    async def hangup(self) -> None:
        if not self.closed:
            await asyncio.to_thread(write_recording, self.path)
        await super().hangup()

    def recording_path(self) -> str | None:
        return str(self.path)


class RecordingTelephony(FakeTelephony):
    def __init__(self, recordings_dir: Path) -> None:
        super().__init__()
        self.recordings_dir = recordings_dir

    async def dial(self, request: DialRequest) -> DialOutcome:
        return DialOutcome(DialResult.ANSWERED, line=RecordedLine(self.recordings_dir / f"{request.call_id}.wav"))


async def main() -> None:
    settings = Settings()
    services = await prepare(settings)
    deps = SessionDeps(calls=services.calls, telephony=RecordingTelephony(settings.data_dir / "recordings"),
                       brain=EchoBrain(), ring_timeout_seconds=5, recordings=services.recordings)
    worker = Worker(services, deps, concurrency=1)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, worker.stop)
    try:
        await worker.run()
    finally:
        await services.aclose()


if __name__ == "__main__":
    asyncio.run(main())
