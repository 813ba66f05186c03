"""The SIP user agent's transport and transaction layer over UDP (RFC 3261 sections 17-18).

One socket per provider. Client transactions retransmit their request on the
T1 doubling schedule until a response (INVITE) or a final response (others)
arrives, time out after 64*T1 with a synthetic 408, and ACK non-2xx final
responses to INVITE themselves. Requests from the far end (BYE, re-INVITE,
OPTIONS) go to the dialog that owns their Call-ID; a new INVITE goes to
``on_invite`` when the agent takes incoming calls (the SIP simulator does).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import structlog

from byourside_server.telephony.sip.message import SipMessage, SipParseError, parse

log = structlog.get_logger(__name__)

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
        interval = T1
        self.ua.send(self.request, self.dest)
        while loop.time() < deadline:
            try:
                await asyncio.wait_for(self._got_response.wait(), timeout=min(interval, deadline - loop.time()))
                if self.is_invite or self._final:
                    return
                self._got_response.clear()
            except TimeoutError:
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


class UserAgent(asyncio.DatagramProtocol):
    """A UDP SIP endpoint: sends messages, matches responses, dispatches requests."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.transactions: dict[tuple[str, str], ClientTransaction] = {}  # (branch, method)
        self.acks: dict[str, tuple[SipMessage, tuple[str, int]]] = {}  # Call-ID -> the ACK of its 2xx
        self.dialogs: dict[str, RequestHandler] = {}  # Call-ID -> in-dialog request handler
        self.on_invite: RequestHandler | None = None  # a new INVITE; None: incoming calls are refused

    @classmethod
    async def open(cls, host: str, port: int) -> UserAgent:
        loop = asyncio.get_running_loop()
        _, ua = await loop.create_datagram_endpoint(cls, local_addr=(host, port), family=socket.AF_INET)
        return ua

    @property
    def port(self) -> int:
        assert self.transport is not None
        return self.transport.get_extra_info("sockname")[1]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def close(self) -> None:
        for tx in list(self.transactions.values()):
            tx.close()
        if self.transport is not None:
            self.transport.close()

    def send(self, message: SipMessage, dest: tuple[str, int]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(message.encode(), dest)

    def request(self, message: SipMessage, dest: tuple[str, int]) -> ClientTransaction:
        tx = ClientTransaction(self, message, dest)
        self.transactions[(tx.branch, message.method or "")] = tx
        return tx

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not data.strip():
            return  # keep-alive
        try:
            message = parse(data)
        except SipParseError:
            log.debug("sip_unparseable", size=len(data))
            return
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
        # RFC 3581: answer to where the request came from, whatever the Via says.
        self.send(response, addr)
