"""Pinned delivery: the connection goes to a checked IP, while SNI, the certificate
check and the Host header keep the URL's name."""

from __future__ import annotations

import ssl

import pytest
from support import write_self_signed
from webhook_receiver import Receiver

from byourside_server.guardrails.webhook_urls import StaticResolver
from byourside_server.webhooks.sender import WebhookSender

NAME = "hooks.example.test"


def self_signed(name: str, tmp_path) -> tuple[ssl.SSLContext, bytes, list[str]]:
    """A server context with a certificate for ``name``, its PEM, and a list that collects SNI names."""
    cert_file, key_file = write_self_signed(tmp_path, name)
    pem = cert_file.read_bytes()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    seen: list[str] = []
    context.sni_callback = lambda _sock, server_name, _ctx: seen.append(server_name)
    return context, pem, seen


@pytest.mark.parametrize("cert_name", [NAME, "someone-else.example.test"])
async def test_https_delivery_is_pinned_to_the_checked_ip_and_verified_for_the_name(tmp_path, cert_name):
    server_context, pem, sni_seen = self_signed(cert_name, tmp_path)
    trust = ssl.create_default_context(cadata=pem.decode())
    resolver = StaticResolver({NAME: ["127.0.0.1"]})
    with Receiver(tls=server_context) as receiver:
        sender = WebhookSender(timeout_seconds=5, allow_private=True, resolver=resolver, verify=trust)
        try:
            result = await sender.send(f"https://{NAME}:{receiver.port}/hook", b"{}", {"Content-Type": "application/json"})
        finally:
            await sender.aclose()
    assert sni_seen == [NAME]  # the name, not the pinned IP, goes out as SNI
    if cert_name == NAME:
        assert result.outcome == "delivered" and result.http_status == 200
        (req,) = receiver.requests
        assert req.headers["host"] == f"{NAME}:{receiver.port}"
    else:  # the certificate is checked against the URL's name even though we connect to an IP
        assert result.outcome == "network_error" and "CERTIFICATE_VERIFY_FAILED" in result.error
        assert receiver.requests == []


async def test_the_next_checked_address_is_tried_when_one_refuses_the_connection():
    # Nothing listens on 127.0.0.2 at the receiver's port; 127.0.0.1 answers.
    with Receiver() as receiver:
        resolver = StaticResolver({NAME: ["127.0.0.2", "127.0.0.1"]})
        sender = WebhookSender(timeout_seconds=5, allow_private=True, allow_http=True, resolver=resolver)
        try:
            result = await sender.send(f"http://{NAME}:{receiver.port}/hook", b"{}", {})
            resolver.point(NAME, "127.0.0.2")
            refused = await sender.send(f"http://{NAME}:{receiver.port}/hook", b"{}", {})
        finally:
            await sender.aclose()
    assert result.outcome == "delivered" and len(receiver.requests) == 1
    assert refused.outcome == "network_error" and "ConnectError" in refused.error
