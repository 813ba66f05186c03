"""Twilio Media Streams messages (bidirectional ``<Connect><Stream>``, protocol "Call" 1.0.0).

From Twilio: ``connected``, ``start`` (streamSid, callSid, mediaFormat audio/x-mulaw 8000 Hz mono),
``media`` (base64 μ-law, 20 ms per message), ``dtmf`` (one key), ``mark`` (the echo of ours, once the
audio before it has played) and ``stop``. To Twilio: ``media``, ``mark`` and ``clear``, each naming
the streamSid.
"""

from __future__ import annotations

import base64
import json

from byourside_server.telephony.ws_media import (StreamAudio, StreamDigit, StreamEvent, StreamMark, StreamProtocol,
                                                 StreamStop)


class TwilioStream(StreamProtocol):
    def __init__(self, stream_sid: str) -> None:
        self.stream_sid = stream_sid

    def parse(self, message: str) -> StreamEvent | None:
        try:
            data = json.loads(message)
            event = data.get("event")
            if event == "media" and data["media"].get("track", "inbound") == "inbound":
                return StreamAudio(base64.b64decode(data["media"]["payload"]))
            if event == "dtmf":
                return StreamDigit(str(data["dtmf"]["digit"]))
            if event == "mark":
                return StreamMark(str(data["mark"]["name"]))
            if event == "stop":
                return StreamStop()
        except (ValueError, KeyError, TypeError, AttributeError):
            return None  # a malformed message is skipped, not fatal
        return None

    def media(self, mulaw: bytes) -> str:
        payload = base64.b64encode(mulaw).decode()
        return json.dumps({"event": "media", "streamSid": self.stream_sid, "media": {"payload": payload}})

    def mark(self, name: str) -> str:
        return json.dumps({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})

    def clear(self) -> str:
        return json.dumps({"event": "clear", "streamSid": self.stream_sid})
