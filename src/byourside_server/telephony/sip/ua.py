"""The SIP user agent's transaction layer over UDP, TCP or TLS (RFC 3261 sections 17-18).

One transport per provider (transport.py, stream.py). Client transactions
time out after 64*T1 with a synthetic 408, and ACK non-2xx final responses to
INVITE themselves; over UDP they also retransmit their request on the T1
doubling schedule until a response (INVITE) or a final response (others)
arrives, over TCP/TLS never (RFC 3261 17.1.1.2). When a connection cannot be
opened, the transactions waiting on it end with a synthetic 503. Requests from
the far end (BYE, re-INVITE, OPTIONS) go to the dialog that owns their
Call-ID; a new INVITE goes to ``on_invite`` when the agent takes incoming
calls (the SIP simulator does).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

from byourside_server.telephony.sip.message import SipMessage, SipParseError
from byourside_server.telephony.sip.stream import StreamTransport
from byourside_server.telephony.sip.transport import (
    TRANSPORTS,
    Address,
    UdpTransport,
    client_tls_context,
)

T1 = 0.5
T2 = 4.0
TIMEOUT = 64 * T1


class ClientTransaction:
    def __init__(self, ua: UserAgent, request: SipMessage, dest: tuple[str, int]) -> None:
        self.ua, self.request, self.dest = ua, request, dest
        self.responses: asyncio.Queue[SipMessage] = asyncio.Queue()
        self.branch = request.branch or ""
        self.is_invite = request.method == "INVITE"
        self._got_response = asyncio.Event()
        self._final = False
        self._retransmit = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        interval = T1 if not self.ua.reliable else TIMEOUT  # a reliable transport delivers or fails by itself
        self.ua.send(self.request, self.dest)
        while loop.time() < deadline:
            try:
                await asyncio.wait_for(self._got_response.wait(), timeout=min(interval, deadline - loop.time()))
                if self.is_invite or self._final:
                    return
                self._got_response.clear()
            except TimeoutError:
                if not self.ua.reliable:
                    self.ua.send(self.request, self.dest)
            interval = min(interval * 2, T2) if not self.is_invite else interval * 2
        self.responses.put_nowait(SipMessage(status=408, reason="Request Timeout (no response)"))

    def on_response(self, response: SipMessage) -> None:
        status = response.status or 0
        if status >= 200:
            self._final = True
            if self.is_invite and status >= 300:
                self.ua.send(self._ack_for(response), self.dest)
        self._got_response.set()
        self.responses.put_nowait(response)

    def on_transport_error(self) -> None:
        """The request could not be sent (RFC 3261 8.1.3.1: as a 503 from the transaction itself)."""
        if not self._final:
            self._final = True
            self._got_response.set()
            self.responses.put_nowait(SipMessage(status=503, reason="Service Unavailable (transport error)"))

    def _ack_for(self, response: SipMessage) -> SipMessage:
        """The ACK of a non-2xx final response: same branch, part of this transaction."""
        ack = SipMessage(method="ACK", uri=self.request.uri)
        ack.add("via", self.request.get("via") or "")
        for name in ("route",):
            for value in self.request.get_all(name):
                ack.add(name, value)
        ack.add("max-forwards", "70")
        ack.add("from", self.request.get("from") or "")
        ack.add("to", response.get("to") or "")
        ack.add("call-id", self.request.call_id)
        ack.add("cseq", f"{self.request.cseq[0]} ACK")
        return ack

    async def next_response(self) -> SipMessage:
        return await self.responses.get()

    def close(self) -> None:
        self._retransmit.cancel()
        self.ua.transactions.pop((self.branch, self.request.method or ""), None)


RequestHandler = Callable[[SipMessage, tuple[str, int]], None]


class UserAgent:
    """A SIP endpoint on one transport: sends messages, matches responses, dispatches requests."""

    def __init__(self) -> None:
        self.transport: UdpTransport | StreamTransport | None = None
        self.transactions: dict[tuple[str, str], ClientTransaction] = {}  # (branch, method)
        self.acks: dict[str, tuple[SipMessage, tuple[str, int]]] = {}  # Call-ID -> the ACK of its 2xx
        self.dialogs: dict[str, RequestHandler] = {}  # Call-ID -> in-dialog request handler
        self.on_invite: RequestHandler | None = None  # a new INVITE; None: incoming calls are refused

    @classmethod
    async def open(cls, host: str, port: int, transport: str = "udp", *, client_tls: ssl.SSLContext | None = None,
                   server_tls: ssl.SSLContext | None = None) -> UserAgent:
        """A user agent on ``transport`` (udp, tcp or tls) bound to ``host:port``.

        UDP and TCP listen there; TLS listens only with ``server_tls`` (our
        certificate), otherwise it only connects out, checking servers with
        ``client_tls`` (default: the system's CAs)."""
        if transport not in TRANSPORTS:
            raise ValueError(f"unknown SIP transport {transport!r}")
        ua = cls()
        if transport == "udp":
            ua.transport = await UdpTransport.open(ua, host, port)
        elif transport == "tcp":
            ua.transport = await StreamTransport.open(ua, host, port)
        else:
            ua.transport = await StreamTransport.open(ua, host, port, client_tls=client_tls or client_tls_context(),
                                                      server_tls=server_tls, listen=server_tls is not None)
        return ua

    @property
    def port(self) -> int:
        """The port we listen on (0: a TLS client without a certificate, which only connects out)."""
        assert self.transport is not None
        return self.transport.port

    @property
    def reliable(self) -> bool:
        return self.transport is not None and self.transport.reliable

    @property
    def default_port(self) -> int:
        """The port a SIP URI without one means on this transport (RFC 3261 19.1.2)."""
        return 5061 if self.transport is not None and self.transport.name == "TLS" else 5060

    def via(self, host: str, port: int) -> str:
        """The sent-by part of our Via: ``SIP/2.0/<transport> host:port``."""
        assert self.transport is not None
        return f"SIP/2.0/{self.transport.name} {host}:{port}"

    def contact_uri(self, host: str, port: int, *, sips: bool = False) -> str:
        """Where the far end reaches us: ``sips:`` in a sips: dialog, else ``sip:`` naming a non-UDP transport."""
        assert self.transport is not None
        if sips:
            return f"sips:byourside@{host}:{port}"
        name = self.transport.name
        return f"sip:byourside@{host}:{port}" + ("" if name == "UDP" else f";transport={name.lower()}")

    def remember_name(self, addr: Address, host: str, *, default: bool = False) -> None:
        """``addr`` was resolved from ``host``: a TLS connection to it checks the certificate for that name.
        With ``default``, also to addresses no name is known for (the trunk's own IPs in Contact headers)."""
        if isinstance(self.transport, StreamTransport) and host != addr[0]:
            self.transport.server_names[addr] = host
            if default:
                self.transport.server_name = host

    async def connect(self, dest: Address) -> int:
        """Be ready to send to ``dest`` (on TCP/TLS: a connection) and return the local port for Via and
        Contact; raises OSError (ssl.SSLError for TLS) when ``dest`` cannot be reached."""
        assert self.transport is not None
        return await self.transport.connect(dest)

    def close(self) -> None:
        for tx in list(self.transactions.values()):
            tx.close()
        if self.transport is not None:
            self.transport.close()

    def send(self, message: SipMessage, dest: tuple[str, int]) -> None:
        if self.transport is not None:
            self.transport.send(message.encode(), dest)

    def request(self, message: SipMessage, dest: tuple[str, int]) -> ClientTransaction:
        tx = ClientTransaction(self, message, dest)
        self.transactions[(tx.branch, message.method or "")] = tx
        return tx

    def transport_failed(self, addr: Address) -> None:
        for tx in list(self.transactions.values()):
            if tx.dest == addr:
                tx.on_transport_error()

    def message_received(self, message: SipMessage, addr: Address) -> None:
        if message.is_request:
            self._on_request(message, addr)
            return
        try:
            method = message.cseq[1]
        except SipParseError:
            return
        tx = self.transactions.get((message.branch or "", method))
        if tx is not None:
            tx.on_response(message)
        elif method == "INVITE" and (message.status or 0) // 100 == 2 and message.call_id in self.acks:
            ack, dest = self.acks[message.call_id]  # the 2xx was retransmitted: our ACK was lost
            self.send(ack, dest)

    def _on_request(self, request: SipMessage, addr: tuple[str, int]) -> None:
        handler = self.dialogs.get(request.call_id)
        if handler is not None:
            handler(request, addr)
        elif request.method == "ACK":
            return  # an ACK never gets a response
        elif request.method == "INVITE" and self.on_invite is not None:
            self.on_invite(request, addr)
        elif request.method == "OPTIONS":
            self.respond(request, addr, 200, "OK")
        else:
            self.respond(request, addr, 481, "Call/Transaction Does Not Exist")

    def respond(self, request: SipMessage, addr: tuple[str, int], status: int, reason: str,
                body: bytes = b"", extra: list[tuple[str, str]] | None = None) -> None:
        response = SipMessage(status=status, reason=reason)
        for name in ("via", "from", "to", "call-id", "cseq", "record-route"):
            for value in request.get_all(name):
                response.add(name, value)
        for name, value in extra or []:
            response.add(name, value)
        response.body = body
        # Answer where the request came from, whatever the Via says: RFC 3581 over UDP, the
        # same connection over TCP/TLS (RFC 3261 18.2.2).
        self.send(response, addr)
