"""SIP over a byte stream (telephony/sip/stream.py): framing by Content-Length, and a real TCP user agent on
loopback that answers what arrives in pieces and closes connections that do not speak SIP."""

from __future__ import annotations

import asyncio
import socket

import pytest

from byourside_server.telephony.sip.message import SipMessage, new_branch, parse
from byourside_server.telephony.sip.stream import MAX_MESSAGE_BYTES, FramingError, StreamFramer
from byourside_server.telephony.sip.ua import UserAgent

OPTIONS = (b"OPTIONS sip:byourside@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKopt1\r\n"
           b"From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:byourside@127.0.0.1>\r\nCall-ID: opt-1\r\n"
           b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
SDP = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n\r\nc=IN IP4 127.0.0.1\r\n"  # a blank line inside the body
INVITE = (b"INVITE sip:+14155550123@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKinv1\r\n"
          b"Call-ID: inv-1\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n"
          b"l: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP)


def drain(framer: StreamFramer) -> list[bytes]:
    messages = []
    while (message := framer.next_message()) is not None:
        messages.append(message)
    return messages


def test_a_message_split_across_reads_comes_out_whole():
    framer = StreamFramer()
    out = []
    for i in range(len(INVITE)):
        framer.feed(INVITE[i:i + 1])
        out += drain(framer)
    assert out == [INVITE]
    assert parse(out[0]).body == SDP  # the blank line inside the body did not end the message


def test_two_messages_in_one_read_and_keep_alives_between_them():
    framer = StreamFramer()
    framer.feed(b"\r\n\r\n" + OPTIONS + b"\r\n\r\n\r\n" + INVITE + b"\r\n")
    assert drain(framer) == [OPTIONS, INVITE]
    framer.feed(b"\r")  # half of a keep-alive, then the next message
    assert drain(framer) == []
    framer.feed(b"\n" + OPTIONS[:40])
    assert drain(framer) == []
    framer.feed(OPTIONS[40:])
    assert drain(framer) == [OPTIONS]


def test_a_message_without_content_length_has_no_body():
    framer = StreamFramer()
    framer.feed(OPTIONS.replace(b"Content-Length: 0\r\n", b"") + OPTIONS)
    assert [parse(m).call_id for m in drain(framer)] == ["opt-1", "opt-1"]


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # not SIP: rejected at the first line
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello on a TCP port: no line end needed
    OPTIONS.replace(b"Content-Length: 0", b"Content-Length: ten"),
    OPTIONS.replace(b"Content-Length: 0", "Content-Length: ²".encode()),
    OPTIONS.replace(b"Content-Length: 0", b"Content-Length: " + b"9" * 5000),
    OPTIONS.replace(b"Content-Length: 0", b"Content-Length: " + str(MAX_MESSAGE_BYTES).encode()),
])
def test_a_stream_that_is_not_sip_raises_instead_of_waiting(garbage):
    framer = StreamFramer()
    framer.feed(garbage)
    with pytest.raises(FramingError):
        drain(framer)


def test_an_endless_head_raises_once_past_the_limit():
    framer = StreamFramer(max_size=1024)
    framer.feed(b"INVITE sip:x@y SIP/2.0\r\n")
    for _ in range(30):
        framer.feed(b"X-Filler: " + b"a" * 30 + b"\r\n")
    with pytest.raises(FramingError):
        framer.next_message()


def test_a_message_left_before_garbage_is_still_delivered():
    framer = StreamFramer()
    framer.feed(OPTIONS + b"HELLO\r\n")
    assert framer.next_message() == OPTIONS
    with pytest.raises(FramingError):
        framer.next_message()


async def read_message(reader: asyncio.StreamReader) -> SipMessage:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
    return parse(head)


async def test_a_tcp_user_agent_answers_on_the_connection_the_request_came_on():
    ua = await UserAgent.open("127.0.0.1", 0, "tcp")
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", ua.port)
        writer.write(b"\r\n\r\n" + OPTIONS[:25])  # a keep-alive, then a request in pieces
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(OPTIONS[25:] + OPTIONS.replace(b"opt-1", b"opt-2"))  # ...and a second one at once
        await writer.drain()
        first, second = await read_message(reader), await read_message(reader)
        assert (first.status, first.call_id, second.status, second.call_id) == (200, "opt-1", 200, "opt-2")
        assert first.get("via") == "SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKopt1"
        writer.close()
    finally:
        ua.close()


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    OPTIONS.replace(b"Content-Length: 0", b"Content-Length: 99999999"),
    b"INVITE sip:x@y SIP/2.0\r\n" + b"X-Filler: aaaaaaaaaaaaaaaaaaaa\r\n" * 4000,  # a head that never ends
    b"INVITE sip:x@y SIP/2.0\r\nno colon here\r\nContent-Length: 0\r\n\r\n",  # frames, but does not parse
])
async def test_a_connection_that_does_not_speak_sip_is_closed(garbage):
    ua = await UserAgent.open("127.0.0.1", 0, "tcp")
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", ua.port)
        try:
            writer.write(garbage)
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), timeout=5) == b""  # closed by us, nothing answered
        except ConnectionResetError:
            pass  # closed by us while bytes we sent were still unread
        writer.close()
    finally:
        ua.close()


async def test_a_tcp_request_is_sent_once_and_a_refused_connection_ends_it_with_503():
    received: list[bytes] = []

    async def silent_server(reader, writer):
        received.append(await reader.readuntil(b"\r\n\r\n"))
        try:
            received.append(await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=1.7))
        except TimeoutError:
            pass  # what we expect: over UDP the request would have been sent again at 0.5 s and 1.5 s
        writer.close()

    server = await asyncio.start_server(silent_server, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ua = await UserAgent.open("127.0.0.1", 0, "tcp")
    try:
        options = parse(OPTIONS)
        options.set("via", f"SIP/2.0/TCP 127.0.0.1:{ua.port};branch={new_branch()}")
        tx = ua.request(options, ("127.0.0.1", port))
        await asyncio.sleep(2.0)
        assert len(received) == 1 and tx.responses.empty()
        tx.close()

        with socket.socket() as probe:  # a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            closed_port = probe.getsockname()[1]
        options.set("via", f"SIP/2.0/TCP 127.0.0.1:{ua.port};branch={new_branch()}")
        tx = ua.request(options, ("127.0.0.1", closed_port))
        response = await asyncio.wait_for(tx.next_response(), timeout=5)
        assert response.status == 503 and response.get("via") is None  # ours, not the far end's
        tx.close()
    finally:
        ua.close()
        server.close()
