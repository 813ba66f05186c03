"""SIP transports (RFC 3261 section 18) and what they share; UDP here, TCP and TLS in stream.py.

A transport sends encoded messages to an address and hands every message it
receives, parsed, to its receiver (the user agent) with the address it came
from. ``reliable`` tells the transaction layer whether to retransmit (UDP) or
not (TCP, TLS). RTP always stays on UDP.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Protocol

import structlog

from byourside_server.telephony.sip.message import SipMessage, SipParseError, parse

log = structlog.get_logger(__name__)

Address = tuple[str, int]
TRANSPORTS = ("udp", "tcp", "tls")


def local_address_towards(dest: Address) -> str:
    """Our IPv4 address on the interface that reaches ``dest`` (the address to write into Via, Contact, SDP)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(dest)  # no packet is sent; the kernel picks the outgoing interface
        return probe.getsockname()[0]
    finally:
        probe.close()


class Receiver(Protocol):
    """What a transport hands its traffic to."""

    def message_received(self, message: SipMessage, addr: Address) -> None: ...

    def transport_failed(self, addr: Address) -> None: ...


class UdpTransport(asyncio.DatagramProtocol):
    """One UDP socket: a datagram is a message; unparseable datagrams and keep-alives are dropped."""

    name = "UDP"
    reliable = False

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def open(cls, receiver: Receiver, host: str, port: int) -> UdpTransport:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_datagram_endpoint(lambda: cls(receiver), local_addr=(host, port),
                                                          family=socket.AF_INET)
        return protocol

    @property
    def port(self) -> int:
        assert self.transport is not None
        return self.transport.get_extra_info("sockname")[1]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    async def connect(self, dest: Address) -> int:
        """Nothing to set up for a datagram: the local port Via and Contact carry is the socket's."""
        return self.port

    def send(self, data: bytes, dest: Address) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, dest)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        if not data.strip():
            return  # keep-alive
        try:
            message = parse(data)
        except SipParseError:
            log.debug("sip_unparseable", size=len(data))
            return
        self.receiver.message_received(message, addr)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def client_tls_context(ca_file: str | None = None, verify: bool = True) -> ssl.SSLContext:
    """How we check the servers we connect to over TLS: the system's CAs, or only those in ``ca_file``."""
    context = ssl.create_default_context(cafile=ca_file)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def server_tls_context(cert_file: str, key_file: str | None = None) -> ssl.SSLContext:
    """Our certificate (PEM chain and key) for accepting TLS connections."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context
