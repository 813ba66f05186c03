"""The ``sip`` telephony provider: outbound calls to a SIP trunk over UDP, TCP or TLS.

``dial`` sends an INVITE (SDP offer: G.711 + telephone-event), answers one
digest challenge, waits through provisional responses until the ring timeout,
and maps the final response to a DialResult. On answer it ACKs, starts RTP and
returns the call's media channel (``RtpMedia``); the voice engine
(voice/engine.py) turns that into the Line the brain talks through. When the
awaiting task is cancelled it sends CANCEL (and BYE if a 2xx crosses it).

A call's media can place a second leg through the same trunk, from the same
caller ID, for a warm transfer (sip/attended.py); the bridges such a transfer
may fall back to run here until either side hangs up, and ``aclose`` ends them.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import socket
import ssl

import structlog

from byourside_server.telephony.base import (
    DialOutcome,
    DialRequest,
    DialResult,
    Telephony,
)
from byourside_server.telephony.sip import sdp
from byourside_server.telephony.sip.attended import attended_transfer as _attended
from byourside_server.telephony.sip.bridge import Bridge
from byourside_server.telephony.sip.config import SipConfig
from byourside_server.telephony.sip.dialog import Dialog
from byourside_server.telephony.sip.digest import (
    DigestError,
    authorization,
    parse_challenge,
)
from byourside_server.telephony.sip.media import RtpMedia
from byourside_server.telephony.sip.message import (
    SipMessage,
    host_port,
    new_branch,
    new_tag,
)
from byourside_server.telephony.sip.rtp import RtpSession
from byourside_server.telephony.sip.transport import (
    client_tls_context,
    local_address_towards,
)
from byourside_server.telephony.sip.ua import ClientTransaction, UserAgent

log = structlog.get_logger(__name__)

CANCEL_WAIT_SECONDS = 4.0


def map_final(status: int) -> tuple[DialResult, str | None]:
    """A final non-2xx response to the outcome of the dial attempt."""
    if status == 486:
        return DialResult.BUSY, None
    if status in (600, 603):
        return DialResult.DECLINED, None
    if status in (408, 480, 487):
        return DialResult.NO_ANSWER, None
    if status in (401, 403, 407):
        return DialResult.FAILED, "sip_auth"
    if status in (404, 484, 485, 604):
        return DialResult.FAILED, "invalid_number"
    return DialResult.FAILED, f"sip_{status}"


class SipTelephony(Telephony):
    name = "sip"

    def __init__(self, config: SipConfig) -> None:
        self.config = config
        self._ua: UserAgent | None = None
        self._ua_lock = asyncio.Lock()
        self.bridges: set[Bridge] = set()  # warm transfers bridged by us (sip/bridge.py)

    async def _user_agent(self) -> UserAgent:
        async with self._ua_lock:
            if self._ua is None:
                cfg = self.config
                transport = cfg.selected_transport
                tls = client_tls_context(cfg.tls_ca_file, cfg.tls_verify) if transport == "tls" else None
                self._ua = await UserAgent.open(cfg.bind_host, cfg.port, transport, client_tls=tls)
            return self._ua

    async def aclose(self) -> None:
        await asyncio.gather(*(joined.close() for joined in list(self.bridges)), return_exceptions=True)
        if self._ua is not None:
            self._ua.close()
            self._ua = None

    async def _next_hop(self, ua: UserAgent) -> tuple[str, int]:
        target = self.config.outbound_proxy or self.config.trunk_host_uri
        host, port = host_port(target, ua.default_port)
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, family=socket.AF_INET, type=socket.SOCK_DGRAM)
        addr = infos[0][4][0], infos[0][4][1]
        ua.remember_name(addr, host, default=True)
        return addr

    def _local_ip(self, dest: tuple[str, int]) -> str:
        return self.config.public_host or local_address_towards(dest)

    async def dial(self, request: DialRequest) -> DialOutcome:
        ua = await self._user_agent()
        try:
            dest = await self._next_hop(ua)
        except OSError:
            log.warning("sip_trunk_unresolvable", call_id=request.call_id)
            return DialOutcome(DialResult.FAILED, reason="sip_unreachable")
        try:
            local_port = await ua.connect(dest)  # TCP/TLS: the connection (and handshake) before the INVITE
        except ssl.SSLError:
            log.warning("sip_trunk_tls_failed", call_id=request.call_id)
            return DialOutcome(DialResult.FAILED, reason="sip_tls")
        except OSError:
            log.warning("sip_trunk_unreachable", call_id=request.call_id)
            return DialOutcome(DialResult.FAILED, reason="sip_unreachable")
        local_ip = self._local_ip(dest)
        loop = asyncio.get_running_loop()
        _, rtp = await loop.create_datagram_endpoint(RtpSession, local_addr=(self.config.bind_host, 0),
                                                     family=socket.AF_INET)
        attempt = _Attempt(self, ua, dest, (local_ip, local_port), rtp, request)
        try:
            outcome = await attempt.run()
        except asyncio.CancelledError:
            await asyncio.shield(attempt.abandon())
            await rtp.close()
            raise
        except Exception:
            await rtp.close()
            attempt.forget()
            raise
        if outcome.media is None:
            await rtp.close()
            attempt.forget()
        return outcome


class _Attempt:
    """One INVITE client attempt and, once answered, the dialog it creates."""

    def __init__(self, provider: SipTelephony, ua: UserAgent, dest: tuple[str, int], local: tuple[str, int],
                 rtp: RtpSession, request: DialRequest) -> None:
        cfg = provider.config
        self.provider, self.ua, self.dest, self.rtp, self.request = provider, ua, dest, rtp, request
        self.local_ip, self.local_port = local  # what Via and Contact carry
        trunk_host = cfg.trunk_host_uri.split(":", 1)[1].split(";", 1)[0].rsplit("@", 1)[-1]
        scheme = "sips" if cfg.sips else "sip"
        self.target_uri = f"{scheme}:{request.to}@{trunk_host}"
        self.from_uri = f"{scheme}:{request.from_number}@{trunk_host}"
        self.call_id = f"{secrets.token_hex(12)}@byourside"
        self.from_tag = new_tag()
        self.cseq = 0
        self.tx: ClientTransaction | None = None
        self.responded = False  # any response at all, even 100 Trying
        self.dialog: Dialog | None = None

    def _invite(self, auth: tuple[str, str] | None = None) -> SipMessage:
        cfg = self.provider.config
        self.cseq += 1
        msg = SipMessage(method="INVITE", uri=self.target_uri)
        msg.add("via", f"{self.ua.via(self.local_ip, self.local_port)};branch={new_branch()};rport")
        msg.add("max-forwards", "70")
        msg.add("from", f"<{self.from_uri}>;tag={self.from_tag}")
        msg.add("to", f"<{self.target_uri}>")
        msg.add("call-id", self.call_id)
        msg.add("cseq", f"{self.cseq} INVITE")
        msg.add("contact", f"<{self.ua.contact_uri(self.local_ip, self.local_port, sips=cfg.sips)}>")
        if cfg.asserted_identity:
            msg.add("p-asserted-identity", f"<{self.from_uri}>")
        if auth is not None:
            msg.add(auth[0], auth[1])
        msg.add("allow", "INVITE, ACK, CANCEL, BYE, OPTIONS")
        msg.add("user-agent", cfg.user_agent)
        msg.add("content-type", "application/sdp")
        msg.body = sdp.offer(self.local_ip, self.rtp.local_port, cfg.payload_types)
        return msg

    async def run(self) -> DialOutcome:
        self.ua.dialogs[self.call_id] = self._early_request
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.request.ring_timeout_seconds
        self.tx = self.ua.request(self._invite(), self.dest)
        authed = False
        while True:
            remaining = deadline - loop.time()
            try:
                # Not wait_for: on Python 3.11 it swallows a cancellation that crosses a response arriving.
                async with asyncio.timeout(max(remaining, 0.001)):
                    response = await self.tx.next_response()
            except TimeoutError:
                if not self.responded:  # nothing ever answered: the trunk is down, not the callee
                    log.warning("sip_no_response", call_id=self.request.call_id)
                    self.tx.close()
                    return DialOutcome(DialResult.FAILED, reason="sip_timeout")
                log.info("sip_ring_timeout", call_id=self.request.call_id)
                answered = await self._cancel_and_drain()
                if answered is not None:
                    return answered
                return DialOutcome(DialResult.NO_ANSWER, reason="ring_timeout")
            status = response.status or 0
            self.responded = True
            if status < 200:
                continue
            if status in (408, 503) and response.get("via") is None:  # from our own transaction:
                self.tx.close()  # a timeout (nothing answered) or a transport error (no connection)
                return DialOutcome(DialResult.FAILED, reason="sip_timeout" if status == 408 else "sip_unreachable")
            if status < 300:
                return self._answered(response)
            self.tx.close()
            if status in (401, 407) and not authed and self.provider.config.username:
                authed = True
                header = "www-authenticate" if status == 401 else "proxy-authenticate"
                try:
                    value = authorization(parse_challenge(response.get(header) or ""), "INVITE", self.target_uri,
                                          self.provider.config.username, self.provider.config.password or "")
                except DigestError:
                    return DialOutcome(DialResult.FAILED, reason="sip_auth")
                name = "authorization" if status == 401 else "proxy-authorization"
                self.tx = self.ua.request(self._invite((name, value)), self.dest)
                continue
            log.info("sip_dial_final", call_id=self.request.call_id, status=status)
            result, reason = map_final(status)
            return DialOutcome(result, reason=reason)

    def _answered(self, response: SipMessage) -> DialOutcome:
        assert self.tx is not None
        self.tx.close()
        dialog = Dialog.from_2xx(self.ua, self.tx.request, response, self.dest,
                                 use_proxy=bool(self.provider.config.outbound_proxy))
        dialog.ack()
        self.dialog = dialog
        try:
            media = sdp.parse_answer(response.body)
        except sdp.SdpError:
            log.warning("sip_bad_sdp_answer", call_id=self.request.call_id)
            dialog.bye()
            return DialOutcome(DialResult.FAILED, reason="sip_media")
        self.rtp.start((media.host, media.port), media.payload_type, media.event_payload_type)
        log.info("sip_answered", call_id=self.request.call_id, codec=self.rtp.codec.name)
        media = RtpMedia(dialog, self.rtp, self.request.call_id)
        media.attended_transfer = functools.partial(_attended, media, place_leg=self._place_leg,
                                                    bridges=self.provider.bridges)
        return DialOutcome(DialResult.ANSWERED, media=media)

    async def _place_leg(self, to: str) -> DialOutcome:
        """A second call, to ``to``, from this call's caller ID, rung as long as this one was (a warm transfer)."""
        request = self.request
        return await self.provider.dial(DialRequest(request.call_id, to, request.from_number,
                                                    request.ring_timeout_seconds, request.language, request.voice,
                                                    record=False))

    def _early_request(self, request: SipMessage, addr: tuple[str, int]) -> None:
        if self.dialog is not None:
            self.dialog.on_request(request, addr)
        elif request.method != "ACK":
            self.ua.respond(request, addr, 481, "Call/Transaction Does Not Exist")

    async def _cancel_and_drain(self) -> DialOutcome | None:
        """Send CANCEL for the pending INVITE; a 2xx that crosses it is ACKed and hung up."""
        if self.tx is None:
            return None
        if not self.responded:  # a CANCEL may only follow a response (RFC 3261 9.1)
            self.tx.close()
            return None
        invite = self.tx.request
        cancel = SipMessage(method="CANCEL", uri=invite.uri)
        cancel.add("via", invite.get("via") or "")
        cancel.add("max-forwards", "70")
        cancel.add("from", invite.get("from") or "")
        cancel.add("to", invite.get("to") or "")
        cancel.add("call-id", self.call_id)
        cancel.add("cseq", f"{invite.cseq[0]} CANCEL")
        # The CANCEL shares the INVITE's branch, so its own transaction is keyed apart.
        cancel_tx = _CancelTransaction(self.ua, cancel, self.dest)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CANCEL_WAIT_SECONDS
        try:
            while loop.time() < deadline:
                try:
                    response = await asyncio.wait_for(self.tx.next_response(), timeout=deadline - loop.time())
                except TimeoutError:
                    break
                status = response.status or 0
                if 200 <= status < 300:
                    outcome = self._answered(response)
                    if outcome.media is not None:
                        await outcome.media.hangup()
                    return None
                if status >= 300:
                    break
        finally:
            cancel_tx.close()
            self.tx.close()
        return None

    async def abandon(self) -> None:
        try:
            await self._cancel_and_drain()
        finally:
            self.forget()

    def forget(self) -> None:
        if self.dialog is None or self.dialog.closed:
            self.ua.dialogs.pop(self.call_id, None)


class _CancelTransaction:
    """Sends CANCEL and, over UDP, retransmits it until the INVITE transaction ends (its responses are ignored)."""

    def __init__(self, ua: UserAgent, cancel: SipMessage, dest: tuple[str, int]) -> None:
        self.ua, self.cancel, self.dest = ua, cancel, dest
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        interval = 0.5
        for _ in range(1 if self.ua.reliable else 6):
            self.ua.send(self.cancel, self.dest)
            await asyncio.sleep(interval)
            interval = min(interval * 2, 4.0)

    def close(self) -> None:
        self._task.cancel()
