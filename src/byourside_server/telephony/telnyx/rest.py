"""The parts of Telnyx's API v2 we use: dial and hang up (Call Control), list the account's numbers.

``POST /v2/calls`` (JSON, ``Authorization: Bearer <API key>``) dials and answers
``{"data": {"call_control_id", ...}}``; ``POST /v2/calls/{call_control_id}/actions/hangup``
ends it, ``.../actions/transfer`` hands it to another number; ``GET /v2/phone_numbers`` and ``GET /v2/verified_numbers`` list numbers, paged with
``page[number]`` / ``page[size]`` and ``meta.total_pages``. Errors: ``{"errors": [{"code", "title", "detail"}]}``.
"""

from __future__ import annotations

import httpx

TIMEOUT_SECONDS = 10.0
PAGE_SIZE = 250
MAX_PAGES = 50


class TelnyxRestError(Exception):
    """Telnyx refused a request (``status`` HTTP, ``code`` its error code), or could not be reached (status 0)."""

    def __init__(self, status: int, code: str | None, message: str) -> None:
        super().__init__(f"Telnyx answered {status} (code {code}): {message}" if status else message)
        self.status, self.code = status, code

    @property
    def reason(self) -> str:
        """The call's end-reason token: ``error:<this>``."""
        if self.status == 0:
            return "carrier_unreachable"
        if self.status in (401, 403):
            return "carrier_auth"
        return f"telnyx_{self.code}" if self.code and self.code.isdigit() else f"telnyx_http_{self.status}"


class TelnyxRest:
    def __init__(self, api_key: str, base_url: str = "https://api.telnyx.com",
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), headers={"Authorization": f"Bearer {api_key}"},
                                       timeout=TIMEOUT_SECONDS, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, body: dict | None = None, params: dict | None = None) -> dict:
        try:
            response = await self._http.request(method, path, json=body, params=params)
        except httpx.HTTPError as exc:
            raise TelnyxRestError(0, None, f"Telnyx's API could not be reached ({type(exc).__name__})") from None
        try:
            data = response.json() if response.content else {}
        except ValueError:
            data = {}
        if response.status_code >= 400:
            error = (data.get("errors") or [{}])[0] if isinstance(data, dict) else {}
            raise TelnyxRestError(response.status_code, str(error.get("code") or "") or None,
                                  str(error.get("detail") or error.get("title") or response.text[:200]))
        return data if isinstance(data, dict) else {}

    async def dial(self, body: dict) -> str:
        """Place a call; returns its call_control_id."""
        data = (await self._request("POST", "/v2/calls", body)).get("data") or {}
        control_id = data.get("call_control_id")
        if not isinstance(control_id, str):
            raise TelnyxRestError(200, None, "Telnyx dialled without a call_control_id")
        return control_id

    async def transfer(self, call_control_id: str, body: dict) -> None:
        """``actions/transfer``: dial ``body["to"]`` and bridge the call to it once answered."""
        await self._request("POST", f"/v2/calls/{call_control_id}/actions/transfer", body)

    async def hangup(self, call_control_id: str) -> None:
        await self._request("POST", f"/v2/calls/{call_control_id}/actions/hangup", {})

    async def numbers(self) -> list[str]:
        """The account's numbers and its verified numbers (E.164), each once."""
        found: list[str] = []
        for path in ("/v2/phone_numbers", "/v2/verified_numbers"):
            for page in range(1, MAX_PAGES + 1):
                body = await self._request("GET", path, params={"page[number]": page, "page[size]": PAGE_SIZE})
                found += [item["phone_number"] for item in body.get("data", [])
                          if isinstance(item, dict) and isinstance(item.get("phone_number"), str)]
                if page >= int((body.get("meta") or {}).get("total_pages") or 1):
                    break
        return list(dict.fromkeys(found))
