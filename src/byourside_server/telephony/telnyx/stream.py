"""Telnyx media streaming messages (Call Control ``stream_url``, bidirectional RTP mode, PCMU 8 kHz).

From Telnyx: ``connected``, ``start`` (stream_id, start.call_control_id, media_format), ``media``
(base64 payload, track inbound), ``dtmf``, ``mark`` (the echo of ours), ``stop``. To Telnyx: ``media``
(base64 PCMU, 20 ms or more), ``mark`` and ``clear``.
"""

from __future__ import annotations

from byourside_server.telephony.ws_media import StreamProtocol


class TelnyxStream(StreamProtocol):
    """Telnyx's messages carry no stream id of ours."""
