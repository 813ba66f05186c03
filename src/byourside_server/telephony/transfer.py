"""Handing a live call to a person: what a transfer that did not go through says.

``Line.transfer`` (telephony/base.py) and ``MediaChannel.transfer``
(telephony/media.py) return once the call is the person's, or raise
``TransferFailed`` with the callee still on the line with us. Kept apart from
both so that either can raise it without importing the other.
"""

from __future__ import annotations


class TransferFailed(Exception):
    """A transfer did not reach the person; the callee is still on the line with us.

    ``reason`` is a short token: ``unsupported`` (this line cannot transfer), ``call_ended``, ``busy``,
    ``no_answer``, ``declined``, ``failed`` or the carrier's own (``twilio_<code>``, ``sip_<status>``).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"transfer failed: {reason}")
        self.reason = reason
