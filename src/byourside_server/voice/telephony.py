"""Composing an audio carrier with the voice engine: dial through the carrier, talk through a ``VoiceLine``.

A carrier (SIP/RTP, a WebSocket media stream) answers with a media channel and
knows nothing of speech; ``VoicedTelephony`` wraps any such provider so that
an answered call comes back with the Line the brains use. Text lines (the
simulator) pass through unchanged. The speech models start loading while the
first call rings, so the callee's hello is not kept waiting.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog

from byourside_server.telephony.base import (
    DialOutcome,
    DialRequest,
    DialResult,
    Telephony,
)
from byourside_server.voice.engine import VoiceLine
from byourside_server.voice.factory import VoiceFactory

log = structlog.get_logger(__name__)


class VoicedTelephony(Telephony):
    def __init__(self, carrier: Telephony, voice: VoiceFactory, recordings_dir: Path | None = None) -> None:
        self.carrier = carrier
        self.voice = voice
        self.recordings_dir = recordings_dir
        self.name = carrier.name
        self._warmup: asyncio.Task | None = None

    def _warm_up(self) -> None:
        if self._warmup is None:
            self._warmup = asyncio.get_running_loop().create_task(self.voice.load())
            self._warmup.add_done_callback(self._warmup_done)

    def _warmup_done(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("voice_models_not_loaded", error=type(task.exception()).__name__)
            self._warmup = None  # the next call tries again; this one fails when it first speaks

    async def dial(self, request: DialRequest) -> DialOutcome:
        self._warm_up()
        outcome = await self.carrier.dial(request)
        if outcome.result is not DialResult.ANSWERED or outcome.media is None:
            return outcome
        line = VoiceLine(outcome.media, self.voice, request.call_id,
                         self.recordings_dir if request.record else None,
                         voice_name=request.voice, language=request.language)
        return DialOutcome(DialResult.ANSWERED, line=line, reason=outcome.reason, media=outcome.media)

    async def aclose(self) -> None:
        if self._warmup is not None and not self._warmup.done():
            self._warmup.cancel()
        await self.carrier.aclose()
