"""Telnyx media streaming messages (Call Control ``stream_url``, bidirectional RTP mode, PCMU 8 kHz).

From Telnyx: ``connected``, ``start`` (stream_id, start.call_control_id, media_format), ``media``
(base64 payload, track inbound), ``dtmf``, ``mark`` (the echo of ours), ``stop``. To Telnyx: ``media``
(base64 PCMU, 20 ms or more), ``mark`` and ``clear``.
"""

from __future__ import annotations

import base64
import json

from byourside_server.telephony.ws_media import (StreamAudio, StreamDigit, StreamEvent, StreamMark, StreamProtocol,
                                                 StreamStop)


class TelnyxStream(StreamProtocol):
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
        return json.dumps({"event": "media", "media": {"payload": base64.b64encode(mulaw).decode()}})

    def mark(self, name: str) -> str:
        return json.dumps({"event": "mark", "mark": {"name": name}})

    def clear(self) -> str:
        return json.dumps({"event": "clear"})
