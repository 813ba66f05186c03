"""The offline brain's hand-over line is heard before the call is transferred, even when the callee talks over it."""

from __future__ import annotations

from byourside_server.agent.base import CALLEE_HUNG_UP
from byourside_server.agent.offline import OfflineBrain
from byourside_server.agent.transfer import HANDING_OVER
from byourside_server.domain import CallTask, EndReason, FieldSpec
from byourside_server.telephony.base import HangUp, Line, LineEvent, Silence, Speech, Spoken

RECEPTIONIST = "+14155550100"


class TalkingOverLine(Line):
    """A callee who asks for a person, then talks over the first ``cut_offs`` hand-over lines before a word of them."""

    def __init__(self, replies: list[str], cut_offs: int, hang_up_after_cut: bool = False) -> None:
        self.replies, self.cut_offs, self.hang_up_after_cut = list(replies), cut_offs, hang_up_after_cut
        self.said: list[tuple[str, bool]] = []
        self.transfers: list[str] = []
        self.now = 0
        self.closed = False

    async def say(self, text: str) -> Spoken:
        start, self.now = self.now, self.now + 1000
        cut = text == HANDING_OVER and self.cut_offs > 0
        self.cut_offs -= cut
        self.said.append((text, cut))
        if cut:
            self.replies.insert(0, "<hang up>" if self.hang_up_after_cut else "Sorry, go on.")
            return Spoken(start, start + 50, interrupted=True, heard="")
        return Spoken(start, self.now)

    async def listen(self, timeout_seconds: float) -> LineEvent:
        start, self.now = self.now, self.now + 1000
        reply = self.replies.pop(0) if self.replies else None
        if self.closed or reply == "<hang up>":
            self.closed = True
            return HangUp(self.now)
        return Speech(reply, start, self.now) if reply else Silence(start, self.now)

    async def transfer(self, to: str, brief: str | None = None) -> None:
        self.transfers.append(to)

    async def send_digits(self, digits: str) -> None:
        pass

    async def hangup(self) -> None:
        self.closed = True

    def elapsed_ms(self) -> int:
        return self.now


def task() -> CallTask:
    return CallTask(call_id="c", to="+14155550134", from_number="+14155550999",
                    objective="Ask when the policy renewal is due.", context=None,
                    fields=(FieldSpec("renewal_date", "string"),), language="en-US", voice="alloy",
                    account_name="Harbor Customers", max_duration_seconds=600, transfer_to=(RECEPTIONIST,))


async def test_a_hand_over_line_talked_over_is_said_again_before_the_transfer() -> None:
    line = TalkingOverLine(["Hello?", "Can I speak to a real person please?"], cut_offs=1)
    end = await OfflineBrain().converse(task(), line)
    assert end.reason == EndReason.TRANSFERRED and line.transfers == [RECEPTIONIST]
    assert [said for said in line.said if said[0] == HANDING_OVER] == [(HANDING_OVER, True), (HANDING_OVER, False)]


async def test_a_hand_over_line_heard_whole_is_said_once() -> None:
    line = TalkingOverLine(["Hello?", "Can I speak to a real person please?"], cut_offs=0)
    end = await OfflineBrain().converse(task(), line)
    assert end.reason == EndReason.TRANSFERRED
    assert [said for said in line.said if said[0] == HANDING_OVER] == [(HANDING_OVER, False)]


async def test_a_callee_who_hangs_up_over_the_hand_over_line_is_not_transferred() -> None:
    line = TalkingOverLine(["Hello?", "Can I speak to a real person please?"], cut_offs=1, hang_up_after_cut=True)
    end = await OfflineBrain().converse(task(), line)
    assert end.reason == CALLEE_HUNG_UP and line.transfers == []
