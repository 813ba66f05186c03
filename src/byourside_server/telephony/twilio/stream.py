"""Twilio Media Streams messages (bidirectional ``<Connect><Stream>``, protocol "Call" 1.0.0).

From Twilio: ``connected``, ``start`` (streamSid, callSid, mediaFormat audio/x-mulaw 8000 Hz mono),
``media`` (base64 μ-law, 20 ms per message), ``dtmf`` (one key), ``mark`` (the echo of ours, once the
audio before it has played) and ``stop``. To Twilio: ``media``, ``mark`` and ``clear``, each naming
the streamSid.
"""

from __future__ import annotations

from byourside_server.telephony.ws_media import StreamProtocol


class TwilioStream(StreamProtocol):
    def __init__(self, stream_sid: str) -> None:
        super().__init__({"streamSid": stream_sid})
        self.stream_sid = stream_sid
