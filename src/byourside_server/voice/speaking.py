"""Speaking on a media channel: one reply's state, playing it in pieces, and what counts as a backchannel.

A reply plays chunk by chunk (voice/ports.py ``SpeechChunk``). When the
callee talks over it the engine (voice/engine.py) pauses it by clearing the
channel; ``play_chunk`` then waits and, if the reply resumes, plays the rest
of the chunk from the position that had actually left, so nothing is
repeated or skipped; if it is stopped, the played position is what was heard.
"""

from __future__ import annotations

import asyncio
import re

from byourside_server.telephony.media import FRAME_SAMPLES, MediaChannel, Playback
from byourside_server.voice.audio import TELEPHONE_RATE
from byourside_server.voice.ports import SpeechChunk

# Words that acknowledge without taking the turn; heard over our speech they do not stop it.
BACKCHANNEL_WORDS = frozenset(
    ["uh", "huh", "uh-huh", "mm", "mmm", "mhm", "mm-hmm", "hmm", "um", "yeah", "yes", "yep", "yup", "ok", "okay", "right", "sure", "alright", "got", "it", "i", "see", "oh", "ah", "aha", "cool", "great", "fine"])
BACKCHANNEL_MAX_WORDS = 3


def is_backchannel(text: str) -> bool:
    """A short acknowledgement ("uh-huh", "okay", "right") or nothing intelligible (noise)."""
    words = re.findall(r"[a-z'-]+", text.lower())
    return len(words) <= BACKCHANNEL_MAX_WORDS and all(w.strip("-'") in BACKCHANNEL_WORDS for w in words)


class Reply:
    """The state of one ``say``: playing, paused by speech over it, or stopped."""

    def __init__(self) -> None:
        self.state = "playing"
        self.changed = asyncio.Event()
        self.deciding: asyncio.Task | None = None  # judging the words said over it

    def set(self, state: str) -> None:
        self.state = state
        self.changed.set()


async def play_chunk(media: MediaChannel, chunk: SpeechChunk, reply: Reply) -> int:
    """Play one chunk, pausing and resuming with the callee; returns how much of it left (ms)."""
    samples = 0
    total = len(chunk.pcm)
    while samples < total:
        if not await until_resumed(media, reply):
            break
        playback = media.play(chunk.pcm[samples:])
        ended = asyncio.ensure_future(media.ended.wait())
        try:
            await asyncio.wait({asyncio.ensure_future(_finished(playback)), ended},
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
        samples = min(total, samples + playback.sent_frames * FRAME_SAMPLES)
        if media.ended.is_set() or playback.sent_frames >= playback.frames:
            break
    return min(chunk.duration_ms, samples * 1000 // TELEPHONE_RATE)


async def until_resumed(media: MediaChannel, reply: Reply) -> bool:
    """Wait while the reply is paused; False once it is stopped or the call ended."""
    while reply.state == "paused" and not media.ended.is_set():
        reply.changed.clear()
        changed = asyncio.ensure_future(reply.changed.wait())
        ended = asyncio.ensure_future(media.ended.wait())
        try:
            await asyncio.wait({changed, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
            ended.cancel()
    return reply.state == "playing" and not media.ended.is_set()


async def _finished(playback: Playback) -> None:
    await playback
