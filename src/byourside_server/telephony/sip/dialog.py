"""An established SIP dialog (RFC 3261 section 12): ACK, in-dialog requests, BYE either way."""

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
from byourside_server.telephony.sip.ua import UserAgent

log = structlog.get_logger(__name__)

BYE_WAIT_SECONDS = 4.0


class Dialog:
    def __init__(self, ua: UserAgent, invite: SipMessage, remote_to: str, remote_target: str,
                 route_set: list[str], dest: tuple[str, int]) -> None:
        self.ua = ua
        self.invite = invite
        self.call_id = invite.call_id
        self.local_from = invite.get("from") or ""
        self.remote_to = remote_to
        self.remote_target = remote_target
        self.route_set = route_set
        self.dest = dest
        self.cseq = invite.cseq[0]
        self.closed = False
        self.on_bye: Callable[[], None] | None = None
        ua.dialogs[self.call_id] = self.on_request

    @classmethod
    def from_2xx(cls, ua: UserAgent, invite: SipMessage, response: SipMessage, next_hop: tuple[str, int],
                 use_proxy: bool) -> Dialog:
        contact = response.get("contact")
        target = uri_of(contact) if contact else invite.uri or ""
        routes = [r for header in reversed(response.get_all("record-route")) for r in reversed(split_comma_list(header))]
        if use_proxy:
            dest = next_hop
        else:
            try:
                host, port = host_port(uri_of(routes[0]) if routes else target)
                dest = (socket.gethostbyname(host), port)
            except (ValueError, OSError):
                dest = next_hop
        return cls(ua, invite, response.get("to") or "", target, routes, dest)

    @property
    def remote_tag(self) -> str | None:
        return tag_of(self.remote_to)

    def _request(self, method: str, cseq: int) -> SipMessage:
        via = self.invite.get("via") or ""
        msg = SipMessage(method=method, uri=self.remote_target)
        msg.add("via", via.split(";branch=")[0] + f";branch={new_branch()};rport")
        for route in self.route_set:
            msg.add("route", route)
        msg.add("max-forwards", "70")
        msg.add("from", self.local_from)
        msg.add("to", self.remote_to)
        msg.add("call-id", self.call_id)
        msg.add("cseq", f"{cseq} {method}")
        return msg

    def ack(self) -> None:
        ack = self._request("ACK", self.invite.cseq[0])
        self.ua.acks[self.call_id] = (ack, self.dest)
        self.ua.send(ack, self.dest)

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
        if request.method == "BYE":
            self.ua.respond(request, addr, 200, "OK")
            if not self.closed:
                self.closed = True
                self._forget()
                if self.on_bye is not None:
                    self.on_bye()
        elif request.method == "INVITE":  # session refresh / re-INVITE: keep the media as negotiated
            contact = self.invite.get("contact") or ""
            self.ua.respond(request, addr, 200, "OK", body=self.invite.body,
                            extra=[("contact", contact), ("content-type", "application/sdp")])
        elif request.method in ("OPTIONS", "INFO", "UPDATE", "NOTIFY"):
            self.ua.respond(request, addr, 200, "OK")
        elif request.method == "CANCEL":
            self.ua.respond(request, addr, 481, "Call/Transaction Does Not Exist")
        else:
            self.ua.respond(request, addr, 405, "Method Not Allowed")
