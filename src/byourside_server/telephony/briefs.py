"""What a carrier needs to hand a call to a person: the brief a warm transfer plays, served to the carrier.

In a warm transfer the person hears a one-sentence brief before being
connected. A carrier fetches what it plays from a URL (Twilio's ``<Play>``
inside the ``<Number url>`` whisper, Telnyx's ``audio_url``), so a provider
keeps each brief here under an unguessable token for a short while and serves
it from its own routes: the words as text (for a carrier that speaks them
itself) and, when our voice rendered them, as an 8 kHz WAV.
"""

from __future__ import annotations

import io
import secrets
import time
import wave
from dataclasses import dataclass

import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from byourside_server.telephony.media import SAMPLE_RATE

BRIEF_KEEP_SECONDS = 600.0  # the person must answer (and the carrier fetch the brief) within this


@dataclass(frozen=True)
class Brief:
    text: str
    wav: bytes | None  # our voice speaking ``text`` (None: the carrier speaks the text)
    created: float


def wav_bytes(pcm: np.ndarray) -> bytes:
    """8 kHz signed 16-bit mono PCM as a WAV file."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(np.asarray(pcm, dtype=np.int16).tobytes())
    return out.getvalue()


class Briefs:
    """Briefs of transfers in flight, by token; each is kept ``BRIEF_KEEP_SECONDS``."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._briefs: dict[str, Brief] = {}

    def put(self, text: str, audio: np.ndarray | None) -> str:
        now = self._clock()
        for token in [t for t, b in self._briefs.items() if now - b.created > BRIEF_KEEP_SECONDS]:
            del self._briefs[token]
        token = secrets.token_urlsafe(18)
        self._briefs[token] = Brief(text, wav_bytes(audio) if audio is not None and len(audio) else None, now)
        return token

    def get(self, token: str) -> Brief | None:
        return self._briefs.get(token)

    def route(self) -> Route:
        """``GET /brief/{token}.wav``: the brief in our voice (404 for an unknown or expired token)."""

        async def serve(request: Request) -> Response:
            brief = self.get(request.path_params["token"])
            if brief is None or brief.wav is None:
                return Response(status_code=404)
            return Response(brief.wav, media_type="audio/wav")

        return Route("/brief/{token}.wav", serve, methods=["GET"])
