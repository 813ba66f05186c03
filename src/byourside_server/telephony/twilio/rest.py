"""The parts of Twilio's REST API (2010-04-01) we use: create and end calls, list the account's numbers.

Calls: ``POST /2010-04-01/Accounts/{AccountSid}/Calls.json`` (form-encoded) creates one;
``POST .../Calls/{CallSid}.json`` with ``Status=canceled`` (still ringing) or
``Status=completed`` (answered) ends it, and with ``Twiml`` replaces a live call's
instructions (a ``<Dial>`` transfers it to a person). Numbers: ``IncomingPhoneNumbers.json``
(numbers bought on the account) and ``OutgoingCallerIds.json`` (verified caller
IDs), both paged with ``next_page_uri``. Errors are JSON ``{"code", "message",
"status"}``; we keep the code (e.g. 21211 invalid To, 21210 From not verified).
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlencode

import httpx

TIMEOUT_SECONDS = 10.0
PAGE_SIZE = 1000
MAX_PAGES = 50


class TwilioRestError(Exception):
    """Twilio refused a request (``status`` HTTP, ``code`` Twilio's error code), or could not be reached (status 0)."""

    def __init__(self, status: int, code: int | None, message: str) -> None:
        super().__init__(f"Twilio answered {status} (code {code}): {message}" if status else message)
        self.status, self.code = status, code

    @property
    def reason(self) -> str:
        """The call's end-reason token: ``error:<this>``."""
        if self.status == 0:
            return "carrier_unreachable"
        if self.code in (21211, 21214, 21217, 13223, 13224):  # the To number is not a number Twilio can call
            return "invalid_number"
        if self.code in (20003, 20404):
            return "carrier_auth"  # wrong Account SID or credentials
        return f"twilio_{self.code}" if self.code else f"twilio_http_{self.status}"


class TwilioRest:
    def __init__(self, account_sid: str, username: str, password: str, base_url: str = "https://api.twilio.com",
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.account_sid = account_sid
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), auth=(username, password),
                                       timeout=TIMEOUT_SECONDS, transport=transport)
        self._calls = f"/2010-04-01/Accounts/{account_sid}/Calls"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, data: Sequence[tuple[str, str]] | None = None) -> dict:
        form = {"content": urlencode(list(data)), "headers": {"Content-Type": "application/x-www-form-urlencoded"}} \
            if data is not None else {}
        try:
            response = await self._http.request(method, path, **form)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            raise TwilioRestError(0, None, f"Twilio's API could not be reached ({type(exc).__name__})") from None
        if response.status_code >= 400:
            try:
                body = response.json()
                code, message = body.get("code"), str(body.get("message", ""))
            except ValueError:
                code, message = None, response.text[:200]
            raise TwilioRestError(response.status_code, code if isinstance(code, int) else None, message)
        try:
            return response.json()
        except ValueError:
            raise TwilioRestError(response.status_code, None, "Twilio answered something that is not JSON") from None

    async def create_call(self, params: Sequence[tuple[str, str]]) -> str:
        """Create a call; returns its CallSid."""
        body = await self._request("POST", f"{self._calls}.json", params)
        sid = body.get("sid")
        if not isinstance(sid, str):
            raise TwilioRestError(200, None, "Twilio created a call without a sid")
        return sid

    async def update_call_twiml(self, call_sid: str, twiml: str) -> None:
        """Replace a live call's instructions (the Update a Call resource's ``Twiml``): e.g. ``<Dial>`` to transfer it."""
        await self._request("POST", f"{self._calls}/{call_sid}.json", [("Twiml", twiml)])

    async def end_call(self, call_sid: str, status: str) -> None:
        """``status``: "canceled" for a call that has not been answered, "completed" to hang up a live one."""
        await self._request("POST", f"{self._calls}/{call_sid}.json", [("Status", status)])

    async def numbers(self) -> list[str]:
        """The account's own numbers and its verified outgoing caller IDs (E.164), each once."""
        found: list[str] = []
        base = f"/2010-04-01/Accounts/{self.account_sid}"
        for resource, key in (("IncomingPhoneNumbers", "incoming_phone_numbers"),
                              ("OutgoingCallerIds", "outgoing_caller_ids")):
            path: str | None = f"{base}/{resource}.json?PageSize={PAGE_SIZE}"
            for _ in range(MAX_PAGES):
                if path is None:
                    break
                page = await self._request("GET", path)
                found += [item["phone_number"] for item in page.get(key, []) if isinstance(item.get("phone_number"), str)]
                path = page.get("next_page_uri")
        return list(dict.fromkeys(found))
