"""An established SIP dialog (RFC 3261 section 12): ACK, in-dialog requests, BYE either way.

Transfer (RFC 3515 REFER, as RFC 5589 uses it for a blind transfer): ``refer``
sends REFER and hands back its transaction; the NOTIFYs that report how the
transfer target answered (``message/sipfrag`` bodies) go to ``on_notify``. A
received REFER goes to ``on_refer`` (the SIP simulator's); without one it is
refused with 405.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import structlog

from byourside_server.telephony.sip.message import (
    SipMessage,
    host_port,
    new_branch,
    split_comma_list,
    tag_of,
    uri_of,
)
from byourside_server.telephony.sip.ua import ClientTransaction, UserAgent

log = structlog.get_logger(__name__)

BYE_WAIT_SECONDS = 4.0


class Dialog:
    """Our side of one dialog, whichever side sent the INVITE.

    ``local``/``remote`` are the From/To header values of requests we send in
    it; ``local_sdp`` and ``contact`` answer a re-INVITE with the media as
    negotiated.
    """

    def __init__(self, ua: UserAgent, *, call_id: str, local: str, remote: str, remote_target: str,
                 route_set: list[str], dest: tuple[str, int], sent_by: str, cseq: int, invite_cseq: int,
                 local_sdp: bytes, contact: str) -> None:
        self.ua = ua
        self.call_id = call_id
        self.local = local
        self.remote = remote
        self.remote_target = remote_target
        self.route_set = route_set
        self.dest = dest
        self.sent_by = sent_by  # "SIP/2.0/<transport> host:port" of our Via
        self.cseq = cseq
        self.invite_cseq = invite_cseq
        self.local_sdp = local_sdp
        self.contact = contact
        self.closed = False
        self.on_bye: Callable[[], None] | None = None
        self.on_notify: Callable[[SipMessage], None] | None = None  # NOTIFYs of a REFER we sent
        self.on_refer: Callable[[SipMessage, tuple[str, int]], None] | None = None
        ua.dialogs[self.call_id] = self.on_request

    @classmethod
    def from_2xx(cls, ua: UserAgent, invite: SipMessage, response: SipMessage, next_hop: tuple[str, int],
                 use_proxy: bool) -> Dialog:
        """The dialog our INVITE created (UAC): the route set is the Record-Route reversed."""
        contact = response.get("contact")
        target = uri_of(contact) if contact else invite.uri or ""
        routes = [r for header in reversed(response.get_all("record-route")) for r in reversed(split_comma_list(header))]
        if use_proxy:
            dest = next_hop
        else:
            try:
                host, port = host_port(uri_of(routes[0]) if routes else target, ua.default_port)
                dest = (socket.gethostbyname(host), port)
                ua.remember_name(dest, host)
            except (ValueError, OSError):
                dest = next_hop
        return cls(ua, call_id=invite.call_id, local=invite.get("from") or "", remote=response.get("to") or "",
                   remote_target=target, route_set=routes, dest=dest,
                   sent_by=(invite.get("via") or "").split(";", 1)[0], cseq=invite.cseq[0],
                   invite_cseq=invite.cseq[0], local_sdp=invite.body, contact=invite.get("contact") or "")

    @classmethod
    def from_invite(cls, ua: UserAgent, invite: SipMessage, local_to: str, addr: tuple[str, int], sent_by: str,
                    local_sdp: bytes, contact: str) -> Dialog:
        """The dialog a received INVITE created (UAS): requests go back where the INVITE came from."""
        remote_contact = invite.get("contact")
        target = uri_of(remote_contact) if remote_contact else uri_of(invite.get("from") or "")
        routes = [r for header in invite.get_all("record-route") for r in split_comma_list(header)]
        return cls(ua, call_id=invite.call_id, local=local_to, remote=invite.get("from") or "",
                   remote_target=target, route_set=routes, dest=addr, sent_by=sent_by, cseq=1,
                   invite_cseq=invite.cseq[0], local_sdp=local_sdp, contact=contact)

    @property
    def remote_tag(self) -> str | None:
        return tag_of(self.remote)

    def _request(self, method: str, cseq: int) -> SipMessage:
        msg = SipMessage(method=method, uri=self.remote_target)
        msg.add("via", f"{self.sent_by};branch={new_branch()};rport")
        for route in self.route_set:
            msg.add("route", route)
        msg.add("max-forwards", "70")
        msg.add("from", self.local)
        msg.add("to", self.remote)
        msg.add("call-id", self.call_id)
        msg.add("cseq", f"{cseq} {method}")
        return msg

    def ack(self) -> None:
        ack = self._request("ACK", self.invite_cseq)
        self.ua.acks[self.call_id] = (ack, self.dest)
        self.ua.send(ack, self.dest)

    def in_dialog(self, method: str, headers: list[tuple[str, str]], body: bytes = b"") -> SipMessage:
        """A new in-dialog request (the next CSeq) with ``headers`` and ``body``."""
        self.cseq += 1
        msg = self._request(method, self.cseq)
        for name, value in headers:
            msg.add(name, value)
        msg.body = body
        return msg

    def refer(self, refer_to: str) -> ClientTransaction:
        """Ask the far end to call ``refer_to`` (a SIP URI) in our place (RFC 3515)."""
        msg = self.in_dialog("REFER", [("refer-to", f"<{refer_to}>"), ("referred-by", f"<{uri_of(self.local)}>"),
                                       ("contact", self.contact)])
        return self.ua.request(msg, self.dest)

    def notify_refer(self, sipfrag: str, *, final: bool) -> ClientTransaction:
        """Report a REFER's progress to the one who sent it: a ``message/sipfrag`` status line."""
        state = "terminated;reason=noresource" if final else "active;expires=60"
        msg = self.in_dialog("NOTIFY", [("event", "refer"), ("subscription-state", state), ("contact", self.contact),
                                        ("content-type", "message/sipfrag;version=2.0")], sipfrag.encode())
        return self.ua.request(msg, self.dest)

    def bye(self) -> asyncio.Task | None:
        """Hang up from our side; returns the task waiting for the BYE's response (or None if closed)."""
        if self.closed:
            return None
        self.closed = True
        self.cseq += 1
        tx = self.ua.request(self._request("BYE", self.cseq), self.dest)

        async def wait() -> None:
            try:
                await asyncio.wait_for(tx.next_response(), timeout=BYE_WAIT_SECONDS)
            except TimeoutError:
                log.info("sip_bye_unanswered", sip_call_id=self.call_id)
            finally:
                tx.close()
                self._forget()

        return asyncio.get_running_loop().create_task(wait())

    def _forget(self) -> None:
        self.ua.dialogs.pop(self.call_id, None)
        self.ua.acks.pop(self.call_id, None)

    def on_request(self, request: SipMessage, addr: tuple[str, int]) -> None:
        if request.method == "ACK":
            return  # the ACK of a 2xx we sent, or of a re-INVITE we answered
        if request.method == "BYE":
            self.ua.respond(request, addr, 200, "OK")
            if not self.closed:
                self.closed = True
                self._forget()
                if self.on_bye is not None:
                    self.on_bye()
        elif request.method == "INVITE":  # session refresh / re-INVITE: keep the media as negotiated
            self.ua.respond(request, addr, 200, "OK", body=self.local_sdp,
                            extra=[("contact", self.contact), ("content-type", "application/sdp")])
        elif request.method == "NOTIFY":
            self.ua.respond(request, addr, 200, "OK")
            if self.on_notify is not None:
                self.on_notify(request)
        elif request.method == "REFER" and self.on_refer is not None:
            self.on_refer(request, addr)
        elif request.method in ("OPTIONS", "INFO", "UPDATE"):
            self.ua.respond(request, addr, 200, "OK")
        elif request.method == "CANCEL":
            self.ua.respond(request, addr, 481, "Call/Transaction Does Not Exist")
        else:
            self.ua.respond(request, addr, 405, "Method Not Allowed")
