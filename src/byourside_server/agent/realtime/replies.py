"""A realtime model's reply as it plays on the channel, and the share of it the callee heard."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from byourside_server.telephony.media import Playback


@dataclass
class Reply:
    """One reply of the model as it plays: its pieces of audio, its text, whether the callee cut it short."""

    playbacks: list[Playback] = field(default_factory=list)
    text: str = ""
    start_ms: int | None = None
    cut: bool = False  # the callee talked over it: later audio of it is dropped
    done: asyncio.Event = field(default_factory=asyncio.Event)
    recorded: bool = False

    @property
    def playing(self) -> bool:
        return any(not p.finished for p in self.playbacks)

    @property
    def played_ms(self) -> int:
        return sum(p.played_ms for p in self.playbacks)

    @property
    def total_ms(self) -> int:
        return sum(p.total_ms for p in self.playbacks)

    async def all_played(self) -> None:
        for playback in list(self.playbacks):
            if not playback.finished:  # shielded: a waiter given up must not cancel the playback itself
                await asyncio.shield(_played(playback))


async def _played(playback: Playback) -> None:
    await playback


def heard_share(text: str, played_ms: int, total_ms: int) -> str:
    """The words of ``text`` whose share of the audio had left (words end in proportion to characters)."""
    if total_ms <= 0 or played_ms >= total_ms:
        return text
    kept, position = [], 0
    for word in text.split():
        position = text.index(word, position) + len(word)
        if position / max(1, len(text)) * total_ms > played_ms:
            break
        kept.append(word)
    return " ".join(kept)
