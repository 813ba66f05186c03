"""Is a webhook URL acceptable? https only, and every address it resolves to is public.

Checked at submission (400 ``invalid_webhook_url``); delivery checks again
against DNS rebinding. ``allow_http`` and ``allow_private`` exist for local
development and tests only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlsplit

from byourside_server.errors import InvalidWebhookUrl

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

# Ranges refused explicitly, whatever Python's ``is_global`` says on this version: shared
# (CGNAT) and special-purpose IPv4 space, and IPv6 ranges that embed or tunnel to an
# IPv4 address (which may be private) or are not routable on the internet.
_BLOCKED_NETWORKS = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "100.64.0.0/10",  # CGNAT shared address space
        "192.0.0.0/24",  # IETF protocol assignments
        "198.18.0.0/15",  # benchmarking
        "::/96",  # IPv4-compatible (deprecated)
        "::ffff:0:0/96",  # IPv4-mapped
        "64:ff9b::/96",  # NAT64
        "64:ff9b:1::/48",  # local-use NAT64
        "2001::/32",  # Teredo
        "2002::/16",  # 6to4
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
        "fec0::/10",  # site-local (deprecated)
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
    )
]


async def system_resolver(host: str, port: int) -> Sequence[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({info[4][0] for info in infos})


class StaticResolver:
    """A resolver answering from a table that can be changed at any time.

    For tests and local setups: point a name at chosen addresses (``point``), for
    example to act out DNS rebinding between submission and delivery. Unknown
    names fail like an unresolvable host.
    """

    def __init__(self, table: dict[str, Sequence[str]] | None = None) -> None:
        self.table = {k.lower(): list(v) for k, v in (table or {}).items()}
        self.lookups: list[str] = []

    def point(self, host: str, *addresses: str) -> None:
        self.table[host.lower()] = list(addresses)

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.lookups.append(host)
        try:
            return list(self.table[host.lower()])
        except KeyError:
            raise OSError(f"cannot resolve {host}") from None


def is_public_address(address: str) -> bool:
    """True only for globally routable unicast addresses a webhook may be sent to."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if "%" in address:  # zone-scoped addresses are link-local by nature
        return False
    if any(ip in net for net in _BLOCKED_NETWORKS if net.version == ip.version):
        return False
    return (
        ip.is_global
        and not ip.is_private
        and not ip.is_loopback
        and not ip.is_link_local
        and not ip.is_multicast
        and not ip.is_reserved
        and not ip.is_unspecified
    )


async def check_webhook_url(
    url: str,
    *,
    allow_http: bool = False,
    allow_private: bool = False,
    resolver: Resolver = system_resolver,
) -> str:
    """Return the URL if it may receive webhooks, else raise InvalidWebhookUrl."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidWebhookUrl("'webhookUrl' is not a valid URL.") from None
    schemes = {"https", "http"} if allow_http else {"https"}
    if parts.scheme.lower() not in schemes:
        raise InvalidWebhookUrl("'webhookUrl' must start with https://.")
    host = parts.hostname
    if not host:
        raise InvalidWebhookUrl("'webhookUrl' has no host.")
    if parts.username or parts.password:
        raise InvalidWebhookUrl("'webhookUrl' must not carry credentials.")
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = list(await resolver(host, port or 443))
        except (OSError, UnicodeError):
            raise InvalidWebhookUrl("'webhookUrl' host does not resolve.") from None
    if not addresses:
        raise InvalidWebhookUrl("'webhookUrl' host does not resolve.")
    if not allow_private and not all(is_public_address(a) for a in addresses):
        raise InvalidWebhookUrl("'webhookUrl' resolves to a non-public address (loopback, private, link-local...).")
    return url
