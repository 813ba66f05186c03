"""SIP trunk settings: ``BYS_SIP_*`` environment variables (docs/configuration.md)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from byourside_server.telephony.sip.transport import TRANSPORTS


class SipConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BYS_SIP_", extra="ignore")

    # Where calls go: ``sip:host[:port]`` or ``host[:port]``; the callee's number becomes the user part.
    trunk_uri: str = ""
    username: str | None = None  # digest credentials for 401/407 challenges
    password: str | None = None
    outbound_proxy: str | None = None  # every request is sent here instead of the trunk's address
    transport: str = ""  # udp, tcp or tls; unset: the trunk URI's ;transport= (sips: means tls), else udp
    tls_ca_file: str | None = None  # PEM CAs that sign the trunk's certificate, instead of the system's
    tls_verify: bool = True  # check the trunk's TLS certificate and host name
    bind_host: str = "0.0.0.0"
    port: int = Field(0, ge=0, le=65535)  # SIP signalling port; 0 picks a free one
    public_host: str | None = None  # address written into Via/Contact/SDP; default: the route to the trunk
    codecs: str = "PCMU,PCMA"  # offer order
    asserted_identity: bool = False  # also send the caller ID as P-Asserted-Identity
    user_agent: str = "byourside"

    @field_validator("transport")
    @classmethod
    def _transport(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in ("", *TRANSPORTS):
            raise ValueError("BYS_SIP_TRANSPORT is one of udp, tcp, tls")
        return value

    @field_validator("codecs")
    @classmethod
    def _codecs(cls, value: str) -> str:
        names = [c.strip().upper() for c in value.split(",") if c.strip()]
        if not names or any(n not in ("PCMU", "PCMA") for n in names):
            raise ValueError("BYS_SIP_CODECS lists PCMU and/or PCMA")
        return ",".join(names)

    @property
    def payload_types(self) -> tuple[int, ...]:
        return tuple(0 if name == "PCMU" else 8 for name in self.codecs.split(","))

    @property
    def trunk_host_uri(self) -> str:
        uri = self.trunk_uri.strip()
        if not uri:
            raise ValueError("BYS_SIP_TRUNK_URI is not set")
        if not uri.lower().startswith(("sip:", "sips:")):
            uri = "sip:" + uri
        return uri

    @property
    def selected_transport(self) -> str:
        """udp, tcp or tls: BYS_SIP_TRANSPORT, else what the trunk URI asks for, else udp."""
        uri = self.trunk_uri.strip().lower()
        if self.transport:
            if uri.startswith("sips:") and self.transport != "tls":
                raise ValueError("a sips: BYS_SIP_TRUNK_URI needs BYS_SIP_TRANSPORT=tls")
            return self.transport
        match = re.search(r";\s*transport=([^;?]*)", uri)
        if match:
            if match.group(1) not in TRANSPORTS:
                raise ValueError("BYS_SIP_TRUNK_URI: ;transport= is one of udp, tcp, tls")
            return match.group(1)
        return "tls" if uri.startswith("sips:") else "udp"

    @property
    def sips(self) -> bool:
        """The trunk URI is ``sips:``: TLS on every hop, and our URIs are sips: too (RFC 3261 8.1.1.8)."""
        return self.trunk_uri.strip().lower().startswith("sips:")
