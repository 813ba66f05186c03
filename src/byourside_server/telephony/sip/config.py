"""SIP trunk settings: ``BYS_SIP_*`` environment variables (docs/configuration.md)."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SipConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BYS_SIP_", extra="ignore")

    # Where calls go: ``sip:host[:port]`` or ``host[:port]``; the callee's number becomes the user part.
    trunk_uri: str = ""
    username: str | None = None  # digest credentials for 401/407 challenges
    password: str | None = None
    outbound_proxy: str | None = None  # every request is sent here instead of the trunk's address
    transport: str = "udp"
    bind_host: str = "0.0.0.0"
    port: int = Field(0, ge=0, le=65535)  # SIP signalling port; 0 picks a free one
    public_host: str | None = None  # address written into Via/Contact/SDP; default: the route to the trunk
    codecs: str = "PCMU,PCMA"  # offer order
    asserted_identity: bool = False  # also send the caller ID as P-Asserted-Identity
    user_agent: str = "byourside"

    @field_validator("transport")
    @classmethod
    def _transport(cls, value: str) -> str:
        value = value.lower()
        if value != "udp":
            raise ValueError("BYS_SIP_TRANSPORT supports 'udp' only")
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
