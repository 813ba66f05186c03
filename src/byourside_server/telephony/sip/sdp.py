"""SDP offer/answer (RFC 3264) for one audio stream: G.711 plus RFC 4733 telephone-event."""

from __future__ import annotations

import time
from dataclasses import dataclass

from byourside_server.telephony.sip.message import ascii_number

TELEPHONE_EVENT_PT = 101


class SdpError(ValueError):
    pass


@dataclass(frozen=True)
class MediaAnswer:
    host: str
    port: int
    payload_type: int  # 0 PCMU or 8 PCMA: the first G.711 codec the answer lists
    event_payload_type: int | None  # telephone-event, when the far end accepts it


def _describe(local_ip: str, rtp_port: int, codecs: tuple[int, ...], event_payload_type: int | None) -> bytes:
    """One sendrecv audio stream at ``local_ip:rtp_port``: G.711 ``codecs`` and, if given, telephone-event."""
    session = int(time.time())
    pts = " ".join(str(pt) for pt in codecs) + (f" {event_payload_type}" if event_payload_type is not None else "")
    lines = [
        "v=0",
        f"o=byourside {session} {session} IN IP4 {local_ip}",
        "s=byourside",
        f"c=IN IP4 {local_ip}",
        "t=0 0",
        f"m=audio {rtp_port} RTP/AVP {pts}",
    ]
    lines += [f"a=rtpmap:{pt} {'PCMU' if pt == 0 else 'PCMA'}/8000" for pt in codecs]
    if event_payload_type is not None:
        lines += [f"a=rtpmap:{event_payload_type} telephone-event/8000", f"a=fmtp:{event_payload_type} 0-16"]
    lines += ["a=ptime:20", "a=sendrecv"]
    return ("\r\n".join(lines) + "\r\n").encode()


def offer(local_ip: str, rtp_port: int, codecs: tuple[int, ...] = (0, 8)) -> bytes:
    return _describe(local_ip, rtp_port, codecs, TELEPHONE_EVENT_PT)


def answer(local_ip: str, rtp_port: int, payload_type: int, event_payload_type: int | None) -> bytes:
    """Our answer to an offer: the one G.711 codec chosen, and telephone-event on the offerer's number."""
    return _describe(local_ip, rtp_port, (payload_type,), event_payload_type)


def parse_offer(body: bytes) -> MediaAnswer:
    """What to answer an offer with: the offerer's first G.711 codec, its address and telephone-event."""
    return parse_answer(body)


def parse_answer(body: bytes) -> MediaAnswer:
    """Pick the negotiated audio codec and address from an SDP answer."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SdpError("SDP is not UTF-8") from exc
    session_host: str | None = None
    media_host: str | None = None
    port: int | None = None
    pts: list[int] = []
    rtpmap: dict[int, str] = {}
    in_audio = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("c="):
            host = line.split()[-1]
            if in_audio:
                media_host = host
            elif port is None:
                session_host = host
        elif line.startswith("m="):
            fields = line[2:].split()
            in_audio = fields[0] == "audio" and port is None
            if in_audio:
                port = ascii_number(fields[1], max_digits=5) if len(fields) >= 4 else None
                if port is None:
                    raise SdpError("bad m= line")
                pts = [pt for pt in (ascii_number(f, max_digits=3) for f in fields[3:]) if pt is not None]
        elif line.startswith("a=rtpmap:") and in_audio:
            pt, _, encoding = line[len("a=rtpmap:"):].partition(" ")
            number = ascii_number(pt, max_digits=3)
            if number is not None:
                rtpmap[number] = encoding.split("/")[0].lower()
    host = media_host or session_host
    if port is None or host is None:
        raise SdpError("answer has no audio stream")
    if port == 0:
        raise SdpError("audio stream rejected")
    codec = next((pt for pt in pts if pt in (0, 8) or rtpmap.get(pt) in ("pcmu", "pcma")), None)
    if codec is None:
        raise SdpError("no common codec")
    if codec not in (0, 8):
        codec = 0 if rtpmap[codec] == "pcmu" else 8
    event = next((pt for pt in pts if rtpmap.get(pt) == "telephone-event"), None)
    return MediaAnswer(host, port, codec, event)
