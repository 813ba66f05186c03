"""Receiving a call (RFC 3261 sections 13.3 and 17.2.1): the server side of one INVITE.

An ``IncomingCall`` owns the INVITE server transaction from the first
response until the call is rejected, cancelled or answered and ACKed. It
answers a retransmitted INVITE with the last response again, retransmits a
final response on the T1 doubling schedule until the ACK arrives (a non-2xx
one over UDP only, RFC 3261 17.2.1; a 2xx over any transport, as 13.3.1.4
asks, since a UDP hop may lie beyond a TCP one), answers a CANCEL (200, then
487 to the INVITE while it is still ringing), and on answer builds the
confirmed ``Dialog``. Whoever listens for calls decides what to do
with each one (the SIP simulator rings, rejects or answers per scenario).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from byourside_server.telephony.sip import sdp
from byourside_server.telephony.sip.dialog import Dialog
from byourside_server.telephony.sip.message import SipMessage, new_tag, uri_of
from byourside_server.telephony.sip.ua import T1, T2, TIMEOUT, UserAgent

log = structlog.get_logger(__name__)


def user_of(uri: str) -> str:
    """The user part of ``sip:user@host`` (the dialled number), or '' when there is none."""
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    user, at, _ = rest.partition("@")
    return user.split(";", 1)[0] if at else ""


class IncomingCall:
    def __init__(self, ua: UserAgent, invite: SipMessage, addr: tuple[str, int], local_ip: str) -> None:
        self.ua, self.invite, self.addr, self.local_ip = ua, invite, addr, local_ip
        self.call_id = invite.call_id
        self.to_tag = new_tag()
        self.cancelled = asyncio.Event()  # the caller gave up before we answered
        self.acked = asyncio.Event()
        self.final_status: int | None = None
        self.dialog: Dialog | None = None
        self._last: SipMessage | None = None
        self._retransmit: asyncio.Task | None = None
        ua.dialogs[self.call_id] = self._on_request
        self._respond(100, "Trying")

    @property
    def number(self) -> str:
        """The dialled number: the user part of the Request-URI."""
        return user_of(self.invite.uri or "")

    @property
    def caller(self) -> str:
        return user_of(uri_of(self.invite.get("from") or ""))

    @property
    def contact(self) -> str:
        sips = (self.invite.uri or "").lower().startswith("sips:")
        return f"<{self.ua.contact_uri(self.local_ip, self.ua.port, sips=sips)}>"

    def _respond(self, status: int, reason: str, body: bytes = b"", extra: list[tuple[str, str]] | None = None) -> None:
        response = SipMessage(status=status, reason=reason)
        for name in ("via", "from", "to", "call-id", "cseq", "record-route"):
            for value in self.invite.get_all(name):
                if name == "to" and status > 100:
                    value = f"{value};tag={self.to_tag}"
                response.add(name, value)
        for name, value in extra or []:
            response.add(name, value)
        response.body = body
        self._last = response
        self.ua.send(response, self.addr)
        if status >= 200:
            self.final_status = status
            self._retransmit = asyncio.get_running_loop().create_task(self._retransmit_until_ack(response))

    async def _retransmit_until_ack(self, response: SipMessage) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        interval = T1
        while loop.time() < deadline:
            try:
                await asyncio.wait_for(self.acked.wait(), timeout=min(interval, deadline - loop.time()))
                break
            except TimeoutError:
                if (response.status or 0) < 300 or not self.ua.reliable:
                    self.ua.send(response, self.addr)
                interval = min(interval * 2, T2)
        if not self.acked.is_set():
            log.info("sip_no_ack", sip_call_id=self.call_id, status=response.status)
            if self.dialog is not None:
                self.dialog.bye()  # a 2xx never ACKed: the dialog must be torn down (RFC 3261 13.3.1.4)
        if self.dialog is None:
            self.ua.dialogs.pop(self.call_id, None)

    def _on_request(self, request: SipMessage, addr: tuple[str, int]) -> None:
        if request.method == "ACK":
            self.acked.set()
            return
        if request.method == "INVITE" and request.branch == self.invite.branch:
            if self._last is not None:
                self.ua.send(self._last, self.addr)  # a retransmission: the same answer again
            return
        if request.method == "CANCEL":
            self.ua.respond(request, addr, 200, "OK")
            if self.final_status is None:
                self._respond(487, "Request Terminated")
                self.cancelled.set()
            return
        if self.dialog is not None:
            self.dialog.on_request(request, addr)
        else:
            self.ua.respond(request, addr, 481, "Call/Transaction Does Not Exist")

    # what the listener does with the call
    def ring(self) -> None:
        if self.final_status is None:
            self._respond(180, "Ringing", extra=[("contact", self.contact)])

    def reject(self, status: int, reason: str) -> None:
        if self.final_status is None:
            self._respond(status, reason)

    def offer(self) -> sdp.MediaAnswer:
        """The caller's media offer; raises SdpError when there is nothing we can answer."""
        return sdp.parse_offer(self.invite.body)

    async def answer(self, media: sdp.MediaAnswer, rtp_port: int,
                     on_refer: Callable[[Dialog, SipMessage, tuple[str, int]], None] | None = None) -> Dialog | None:
        """Answer with 200 OK and wait for the ACK; the confirmed dialog, or None if the caller went away.

        ``on_refer`` takes the REFERs of the dialog from its first moment (the caller may send one at once)."""
        if self.final_status is not None:
            return None
        body = sdp.answer(self.local_ip, rtp_port, media.payload_type, media.event_payload_type)
        local_to = f"{self.invite.get('to') or ''};tag={self.to_tag}"
        self.dialog = Dialog.from_invite(self.ua, self.invite, local_to, self.addr,
                                         self.ua.via(self.local_ip, self.ua.port), body, self.contact)
        if on_refer is not None:
            dialog = self.dialog
            dialog.on_refer = lambda refer, addr: on_refer(dialog, refer, addr)
        self.ua.dialogs[self.call_id] = self._on_request  # until the ACK, then the dialog alone
        self._respond(200, "OK", body=body, extra=[("contact", self.contact), ("content-type", "application/sdp"),
                                                   ("allow", "INVITE, ACK, CANCEL, BYE, OPTIONS")])
        assert self._retransmit is not None
        await asyncio.shield(self._retransmit)
        if not self.acked.is_set() or self.dialog.closed:
            return None
        self.ua.dialogs[self.call_id] = self.dialog.on_request
        return self.dialog

    def close(self) -> None:
        if self._retransmit is not None and not self._retransmit.done():
            self._retransmit.cancel()
        if self.dialog is None or self.dialog.closed:
            self.ua.dialogs.pop(self.call_id, None)
