"""One webhook attempt over HTTP, with the SSRF guard applied at send time.

The host is resolved now (not trusted from submission), every address it
resolves to must be public (unless ``allow_private``), and the connection goes
to a checked address (the next one only if the connection is refused): the
URL's host is replaced by that IP, while the ``Host`` header and the TLS SNI /
certificate check keep the original name.
A second DNS answer (rebinding) therefore never decides where bytes go.
Redirects are never followed; keep-alive is off so a connection opened for one
host is never reused for another that shares its address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from byourside_server.guardrails.webhook_urls import (
    Resolver,
    is_public_address,
    system_resolver,
)

DELIVERED, HTTP_ERROR, GONE, TIMEOUT, NETWORK_ERROR, BLOCKED = (
    "delivered", "http_error", "gone", "timeout", "network_error", "blocked"
)
_MAX_ERROR = 300


@dataclass(frozen=True)
class AttemptResult:
    outcome: str  # delivered | http_error | gone | timeout | network_error | blocked
    http_status: int | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.outcome == DELIVERED

    def to_json(self) -> dict[str, object]:
        return {"outcome": self.outcome, "httpStatus": self.http_status, "error": self.error, "durationMs": self.duration_ms}


class Blocked(Exception):
    """The URL may not receive webhooks right now (scheme or address)."""


class WebhookSender:
    def __init__(
        self,
        *,
        timeout_seconds: float = 15.0,
        allow_http: bool = False,
        allow_private: bool = False,
        resolver: Resolver = system_resolver,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.allow_http = allow_http
        self.allow_private = allow_private
        self.resolver = resolver
        self._client = httpx.AsyncClient(
            verify=verify,
            follow_redirects=False,
            trust_env=False,  # never route through a proxy from the environment: it would bypass pinning
            timeout=httpx.Timeout(timeout_seconds),
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> AttemptResult:
        """POST ``body`` to ``url``; never raises for network or HTTP trouble."""
        started = time.monotonic()

        def result(outcome: str, status: int | None = None, error: str | None = None) -> AttemptResult:
            ms = int((time.monotonic() - started) * 1000)
            return AttemptResult(outcome, status, error[:_MAX_ERROR] if error else None, ms)

        try:
            targets, host_header, sni = await self._pin(url)
        except Blocked as exc:
            return result(BLOCKED, error=str(exc))
        except (OSError, UnicodeError):
            return result(NETWORK_ERROR, error="dns: the host does not resolve")
        except TimeoutError:
            return result(TIMEOUT, error="dns: resolving the host timed out")
        request_headers = {**headers, "Host": host_header}
        extensions = {"sni_hostname": sni} if sni else {}
        status: int | None = None
        try:
            async with asyncio.timeout(self.timeout_seconds):
                for index, target in enumerate(targets):
                    try:
                        async with self._client.stream(
                            "POST", target, content=body, headers=request_headers, extensions=extensions
                        ) as response:
                            status = response.status_code
                        break
                    except httpx.ConnectError:
                        if index == len(targets) - 1:
                            raise  # every checked address refused the connection
        except (TimeoutError, httpx.TimeoutException):
            return result(TIMEOUT, error=f"timeout: no response within {self.timeout_seconds:g} s")
        except (httpx.HTTPError, OSError, ssl.SSLError) as exc:
            return result(NETWORK_ERROR, error=f"{type(exc).__name__}: {exc}".strip())
        assert status is not None
        if 200 <= status < 300:
            return result(DELIVERED, status)
        if status == 410:
            return result(GONE, status, "410 Gone: the receiver asked for no more deliveries of this event")
        return result(HTTP_ERROR, status, f"HTTP {status}")

    async def _pin(self, url: str) -> tuple[list[httpx.URL], str, str | None]:
        """(the URL with each checked IP as host, in resolver order; Host header; TLS server name).

        Raises Blocked when the scheme is not allowed or any answer is not public.
        """
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            raise Blocked("blocked: not a valid URL") from None
        scheme = parsed.scheme
        if scheme != "https" and not (scheme == "http" and self.allow_http):
            raise Blocked("blocked: only https:// URLs receive webhooks")
        host = parsed.host
        if not host or parsed.userinfo:
            raise Blocked("blocked: the URL needs a host and no credentials")
        port = parsed.port or (443 if scheme == "https" else 80)
        try:
            addresses = [str(ipaddress.ip_address(host))]
            literal = True
        except ValueError:
            literal = False
            async with asyncio.timeout(self.timeout_seconds):
                addresses = list(await self.resolver(host, port))
        if not addresses:
            raise OSError("no addresses")
        if not self.allow_private:
            refused = [a for a in addresses if not is_public_address(a)]
            if refused:
                raise Blocked(f"blocked: the host resolves to a non-public address ({refused[0]})")
        host_header = parsed.netloc.decode("ascii")
        sni = None if literal or scheme != "https" else host
        return [parsed.copy_with(host=address) for address in addresses], host_header, sni
