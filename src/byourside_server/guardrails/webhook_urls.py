"""Is a webhook URL acceptable? https only, and every address it resolves to is public.

Checked at submission (400 ``invalid_webhook_url``); delivery checks again
against DNS rebinding. ``allow_http`` and ``allow_private`` exist for local
development and tests only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Awaitable, Callable, Sequence
from urllib.parse import urlsplit

from byourside_server.errors import InvalidWebhookUrl

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

# Ranges Python's ``is_global`` still calls global but which must never be dialled out to.
_EXTRA_BLOCKED = [
    ipaddress.ip_network("64:ff9b::/96"),  # NAT64 (embeds IPv4, possibly private)
    ipaddress.ip_network("64:ff9b:1::/48"),  # local-use NAT64
    ipaddress.ip_network("2002::/16"),  # 6to4 (embeds IPv4)
]


async def system_resolver(host: str, port: int) -> Sequence[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({info[4][0] for info in infos})


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return is_public_address(str(ip.ipv4_mapped))
    if any(ip in net for net in _EXTRA_BLOCKED if net.version == ip.version):
        return False
    return ip.is_global and not ip.is_multicast and not ip.is_reserved and not ip.is_unspecified


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
