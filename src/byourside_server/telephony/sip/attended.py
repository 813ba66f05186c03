"""A warm transfer on SIP: an attended transfer (RFC 5589 section 7), with a bridged fallback.

1. A second leg: an INVITE to the person through the same trunk, from our
   caller ID (the provider's own ``dial``, rung as long as the call's ring
   timeout). Busy, no answer, decline or failure raise ``TransferFailed``
   with that reason; the callee is still ours.
2. Once the person answers, the brief plays on their leg in our voice (the
   audio the voice engine rendered from the brain's words). The callee hears
   silence meanwhile: the brain has just told them to hold on.
3. REFER in the callee's dialog, ``Refer-To: <sip:person@trunk?Replaces=...>``
   naming our dialog with the person (RFC 3891: their tag is the to-tag, ours
   the from-tag). The trunk connects the callee to the person in place of our
   leg, which the person's side ends with BYE; the NOTIFY's ``200`` sipfrag
   says it is done and we leave the callee's dialog with BYE.
4. A trunk that refuses REFER (405, 420, 501, any non-2xx), or whose NOTIFY
   reports a failure or never comes: we bridge the two legs ourselves
   (bridge.py) until either hangs up.

REFER with Replaces is the primary path: it hands the media off to the
trunk, so the call adds no relay delay, costs us nothing more, and survives a
restart of the worker. The bridge keeps our process on both legs' media for
the rest of the call, so it is only the fallback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import quote

import numpy as np
import structlog

from byourside_server.telephony.base import DialOutcome, DialResult
from byourside_server.telephony.sip.bridge import Bridge
from byourside_server.telephony.sip.dialog import Dialog
from byourside_server.telephony.sip.message import SipMessage, tag_of
from byourside_server.telephony.transfer import TransferFailed

if TYPE_CHECKING:
    from byourside_server.telephony.sip.media import RtpMedia

log = structlog.get_logger(__name__)

PlaceLeg = Callable[[str], Awaitable[DialOutcome]]  # dial a number through the call's trunk, from our caller ID

LEG_FAILURES = {DialResult.BUSY: "busy", DialResult.NO_ANSWER: "no_answer", DialResult.DECLINED: "declined"}


def leg_failure(outcome: DialOutcome) -> str:
    """A second leg that was not answered, as ``TransferFailed.reason``."""
    if outcome.result in LEG_FAILURES:
        return LEG_FAILURES[outcome.result]
    return outcome.reason if outcome.reason and outcome.reason.startswith("sip_") else "failed"


def replaces_uri(target: str, leg: Dialog) -> str:
    """``target`` with a Replaces header (RFC 3891) naming ``leg``, our dialog with the person, as they know it."""
    value = f"{leg.call_id};to-tag={leg.remote_tag};from-tag={tag_of(leg.local)}"
    return f"{target}?Replaces={quote(value, safe='')}"


async def attended_transfer(callee: RtpMedia, to: str, brief_audio: np.ndarray, place_leg: PlaceLeg,
                            bridges: set[Bridge]) -> None:
    """Brief the person at ``to`` on a second leg (``place_leg``), then connect them with the callee (see the
    module docstring); a bridge we make joins ``bridges`` (the provider's, which it ends when it closes).

    Returns once the callee is the person's (through the trunk, or bridged by us); raises ``TransferFailed`` with
    the callee still ours."""
    person = await _place_leg(callee, to, place_leg)
    try:
        await _brief(callee, person, brief_audio)
        referred = await _refer_with_replaces(callee, person, to)
    except BaseException:
        await person.hangup()
        raise
    if referred:
        log.info("sip_call_transferred", call_id=callee.call_id, warm=True)
        await person.hangup()  # already ended by the person's side as replaced; a BYE if it was not
        await callee.hangup()
        return
    log.info("sip_transfer_bridged", call_id=callee.call_id)
    callee.hand_over()
    joined = Bridge(callee, person)
    bridges.add(joined)
    joined.task.add_done_callback(lambda _: bridges.discard(joined))


async def _first(awaitable: Awaitable, *events: asyncio.Event) -> bool:
    """Wait for ``awaitable`` or any of ``events``; True when ``awaitable`` finished first (else it is cancelled)."""
    main = asyncio.ensure_future(awaitable)
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait({main, *waits}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
        if not main.done():
            main.cancel()
            await asyncio.wait({main})  # a dial being cancelled sends CANCEL (and BYE to a 2xx crossing it)
    return not main.cancelled()


async def _place_leg(callee: RtpMedia, to: str, place_leg: PlaceLeg) -> RtpMedia:
    dialing = asyncio.ensure_future(place_leg(to))
    if not await _first(dialing, callee.ended):
        raise TransferFailed("call_ended")
    try:
        outcome = dialing.result()
    except Exception as exc:  # noqa: BLE001 - a leg that could not be placed is a failed transfer; the callee is still ours
        log.warning("sip_transfer_leg_failed", call_id=callee.call_id, error=type(exc).__name__)
        raise TransferFailed("failed") from None
    person = outcome.media
    if person is None:
        log.info("sip_transfer_leg_not_answered", call_id=callee.call_id, result=outcome.result.value)
        raise TransferFailed(leg_failure(outcome))
    assert isinstance(person, type(callee))
    person.rtp.on_frame = None  # nobody listens to the person's leg while we brief them
    if callee.ended.is_set():
        await person.hangup()
        raise TransferFailed("call_ended")
    return person


async def _brief(callee: RtpMedia, person: RtpMedia, audio: np.ndarray) -> None:
    log.info("sip_transfer_briefing", call_id=callee.call_id, brief_ms=len(audio) // 8)
    await _first(person.play(audio), callee.ended, person.ended)
    if callee.ended.is_set():
        raise TransferFailed("call_ended")
    if person.ended.is_set():
        raise TransferFailed("declined")  # the person hung up on the brief


async def _refer_with_replaces(callee: RtpMedia, person: RtpMedia, to: str) -> bool:
    """True when the trunk connected the callee to the person; False when we must bridge them ourselves."""
    from byourside_server.telephony.sip.media import (
        REFER_WAIT_SECONDS,
        TRANSFER_WAIT_SECONDS,
        sipfrag_status,
    )

    notices: asyncio.Queue[SipMessage] = asyncio.Queue()
    callee.dialog.on_notify = notices.put_nowait
    tx = callee.dialog.refer(replaces_uri(callee.transfer_target(to), person.dialog))
    try:
        async def refer_answered() -> int | None:
            return (await tx.next_response()).status

        async def notified() -> int | None:
            return sipfrag_status((await notices.get()).body)

        status = await callee.final_status(refer_answered, REFER_WAIT_SECONDS)
        if status is not None and 200 <= status < 300:
            status = await callee.final_status(notified, TRANSFER_WAIT_SECONDS)
            if status is not None and 200 <= status < 300:
                return True
            log.info("sip_replaces_not_put_through", call_id=callee.call_id, status=status)
        else:
            log.info("sip_refer_refused", call_id=callee.call_id, status=status)
    finally:
        tx.close()
        callee.dialog.on_notify = None
    if callee.ended.is_set():
        raise TransferFailed("call_ended")
    if person.ended.is_set():
        raise TransferFailed("declined")
    return False
