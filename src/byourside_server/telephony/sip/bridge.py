"""Two answered SIP legs joined in our process: the fallback of a warm transfer (attended.py).

Each leg's inbound audio, as its RTP ticker releases it from the jitter
buffer, goes out on the other leg's next receive tick (``RtpSession.relay``),
so both directions keep one packet per 20 ms whatever the codecs; DTMF keys
are passed on as RFC 4733 events. When either side hangs up (BYE), or the
provider closes (``close``), we hang up the other and release both legs'
media. Nothing of it reaches the recording or the transcript: the call is the
person's.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from byourside_server.telephony.sip.media import RtpMedia

log = structlog.get_logger(__name__)


class Bridge:
    """Relays audio and keys between two legs from the moment it is made until either hangs up or ``close``."""

    def __init__(self, callee: RtpMedia, person: RtpMedia) -> None:
        self.callee, self.person = callee, person
        self._over = asyncio.Event()
        # Wired here, not in the task: a bridge closed before its task first runs still ends both legs.
        for leg, other in ((callee, person), (person, callee)):
            leg.rtp.on_frame = lambda inbound, _outbound, other=other: other.rtp.relay(inbound)
            leg.rtp.on_digit = lambda digit, other=other: other.rtp.send_digits(digit)
            leg.dialog.on_bye = self._over.set
        log.info("sip_legs_bridged", call_id=callee.call_id)
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        await self._over.wait()
        log.info("sip_bridge_ended", call_id=self.callee.call_id)
        byes = [task for task in (self.callee.dialog.bye(), self.person.dialog.bye()) if task is not None]
        await asyncio.gather(*byes, return_exceptions=True)
        for leg in (self.callee, self.person):
            await leg.rtp.close()

    async def close(self) -> None:
        """Hang up both legs (the worker is going away) and wait until they are released."""
        self._over.set()
        await asyncio.shield(self.task)
