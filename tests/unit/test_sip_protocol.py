"""SIP/SDP/RTP pieces on their own: digest vectors, message parsing, SDP answers, jitter buffer."""

from __future__ import annotations

import struct

import pytest

from byourside_server.telephony.base import DialResult
from byourside_server.telephony.sip import sdp
from byourside_server.telephony.sip.digest import (
    DigestError,
    authorization,
    parse_challenge,
)
from byourside_server.telephony.sip.message import (
    SipParseError,
    host_port,
    parse,
    split_comma_list,
    tag_of,
    uri_of,
)
from byourside_server.telephony.sip.config import SipConfig
from byourside_server.telephony.sip.provider import map_final
from byourside_server.telephony.sip.rtp import JitterBuffer, parse_rtp


def test_digest_matches_the_rfc_2617_example():
    challenge = parse_challenge('Digest realm="testrealm@host.com", qop="auth,auth-int", '
                                'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"')
    value = authorization(challenge, "GET", "/dir/index.html", "Mufasa", "Circle Of Life", cnonce="0a4f113b")
    assert 'response="6629fae49393a05397450978507c4ef1"' in value
    assert "qop=auth" in value and "nc=00000001" in value and 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in value


def test_digest_without_qop_and_unsupported_challenges():
    value = authorization({"realm": "r", "nonce": "n"}, "INVITE", "sip:x@y", "u", "p")
    assert 'response="d15c26d1f9dbc965980a7b6cff61f746"' in value and "qop" not in value
    with pytest.raises(DigestError):
        parse_challenge('Basic realm="x"')
    with pytest.raises(DigestError):
        authorization({"realm": "r"}, "INVITE", "sip:x@y", "u", "p")
    with pytest.raises(DigestError):
        authorization({"realm": "r", "nonce": "n", "algorithm": "SHA-512-256"}, "INVITE", "sip:x@y", "u", "p")


def test_parse_response_with_compact_and_folded_headers():
    raw = (b"SIP/2.0 180 Ringing\r\nv: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc;rport\r\n"
           b"f: <sip:a@b>;tag=111\r\nt: \"Bob\" <sip:bob@b>;tag=222\r\ni: call-1\r\nCSeq: 7\r\n INVITE\r\n"
           b"l: 4\r\n\r\nbodyEXTRA")
    msg = parse(raw)
    assert (msg.status, msg.reason, msg.is_request) == (180, "Ringing", False)
    assert msg.branch == "z9hG4bKabc" and msg.call_id == "call-1" and msg.cseq == (7, "INVITE")
    assert tag_of(msg.get("to")) == "222" and uri_of(msg.get("to")) == "sip:bob@b"
    assert msg.body == b"body"
    for bad in (b"", b"HELLO\r\n\r\n", b"SIP/2.0 abc OK\r\n\r\n", b"INVITE sip:x SIP/2.0\r\nno colon\r\n\r\n"):
        with pytest.raises(SipParseError):
            parse(bad)


def test_request_round_trip_and_uri_helpers():
    msg = parse(b"BYE sip:byourside@127.0.0.1:5070 SIP/2.0\r\nCall-ID: x\r\nCSeq: 2 BYE\r\n\r\n")
    assert (msg.method, msg.uri) == ("BYE", "sip:byourside@127.0.0.1:5070")
    assert parse(msg.encode()).get("call-id") == "x"
    assert host_port("sip:+1415@trunk.example.com:5080;transport=udp") == ("trunk.example.com", 5080)
    assert host_port("sip:[2001:db8::1]:5062") == ("2001:db8::1", 5062)
    assert host_port("sip:pbx.local") == ("pbx.local", 5060)
    assert split_comma_list('<sip:p1;lr>, "A, B" <sip:p2;lr>') == ["<sip:p1;lr>", '"A, B" <sip:p2;lr>']


ANSWER = b"""v=0\r
o=- 1 1 IN IP4 192.0.2.1\r
s=-\r
c=IN IP4 192.0.2.1\r
t=0 0\r
m=audio 40000 RTP/AVP 8 96\r
c=IN IP4 192.0.2.9\r
a=rtpmap:8 PCMA/8000\r
a=rtpmap:96 telephone-event/8000\r
"""


def test_sdp_answer_picks_codec_address_and_event_type():
    media = sdp.parse_answer(ANSWER)
    assert (media.host, media.port, media.payload_type, media.event_payload_type) == ("192.0.2.9", 40000, 8, 96)
    offer = sdp.offer("10.0.0.5", 30000, (0, 8)).decode()
    assert "m=audio 30000 RTP/AVP 0 8 101" in offer and "telephone-event/8000" in offer
    for bad in (b"v=0\r\n", ANSWER.replace(b"40000", b"0"), ANSWER.replace(b"RTP/AVP 8 96", b"RTP/AVP 18 96")):
        with pytest.raises(sdp.SdpError):
            sdp.parse_answer(bad)


@pytest.mark.parametrize(("status", "expected"), [
    (486, (DialResult.BUSY, None)), (600, (DialResult.DECLINED, None)), (603, (DialResult.DECLINED, None)),
    (480, (DialResult.NO_ANSWER, None)), (408, (DialResult.NO_ANSWER, None)),
    (407, (DialResult.FAILED, "sip_auth")), (404, (DialResult.FAILED, "invalid_number")),
    (500, (DialResult.FAILED, "sip_500")),
])
def test_final_status_mapping(status, expected):
    assert map_final(status) == expected


def test_jitter_buffer_reorders_waits_for_depth_and_plays_gaps_as_loss():
    jb = JitterBuffer(depth=3)
    jb.push(65534, b"a")
    assert jb.pop() is None  # still filling
    jb.push(0, b"c")  # out of order, across the sequence wrap
    jb.push(65535, b"b")
    assert [jb.pop(), jb.pop(), jb.pop()] == [b"a", b"b", b"c"]
    jb.push(2, b"e")
    jb.push(1, b"d")
    jb.push(4, b"g")  # 3 never arrives
    assert [jb.pop(), jb.pop(), jb.pop(), jb.pop()] == [b"d", b"e", None, b"g"]
    assert jb.lost == 1
    jb.push(3, b"too late")
    assert jb.late == 1
    assert jb.pop() is None  # drained: rebuffers instead of counting loss
    assert jb.lost == 1


def test_rtp_parsing():
    packet = struct.pack("!BBHII", 0x80, 0x80 | 101, 7, 1600, 42) + b"\x05\x8a\x03\x20"
    parsed = parse_rtp(packet)
    assert (parsed.payload_type, parsed.marker, parsed.seq, parsed.timestamp, parsed.payload) == (
        101, True, 7, 1600, b"\x05\x8a\x03\x20")
    assert parse_rtp(b"\x00" * 12) is None and parse_rtp(b"\x80") is None


@pytest.mark.parametrize(("trunk_uri", "transport", "expected", "sips"), [
    ("pbx.local", "", "udp", False),
    ("sip:pbx.local:5080;transport=TCP", "", "tcp", False),
    ("sip:+1415@pbx.local;lr;transport=tls", "", "tls", False),
    ("sips:pbx.local", "", "tls", True),
    ("sip:pbx.local;transport=udp", "tcp", "tcp", False),  # the setting wins over the URI
])
def test_the_transport_comes_from_the_setting_else_the_trunk_uri(trunk_uri, transport, expected, sips):
    config = SipConfig(trunk_uri=trunk_uri, transport=transport)
    assert (config.selected_transport, config.sips) == (expected, sips)


@pytest.mark.parametrize("number", ["²", "١٢", "9" * 5000, "+1"])
def test_numbers_a_peer_writes_in_other_digits_or_at_length_are_parse_errors(number):
    request = (
        "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nCall-ID: c\r\n"
        f"CSeq: {number} INVITE\r\nContent-Length: {number}\r\n\r\nbody"
    ).encode()
    message = parse(request)
    assert message.body == b"body"  # an unreadable Content-Length is ignored, never raised past the parser
    with pytest.raises(SipParseError):
        message.cseq
    with pytest.raises(SipParseError):
        parse(f"SIP/2.0 {number} OK\r\nCSeq: 1 INVITE\r\n\r\n".encode())
    with pytest.raises(sdp.SdpError):
        sdp.parse_answer(ANSWER.replace(b"40000", number.encode()))
    assert sdp.parse_answer(ANSWER.replace(b"RTP/AVP 8 96", f"RTP/AVP 8 96 {number}".encode())).port == 40000
