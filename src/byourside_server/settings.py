"""Settings from ``BYS_`` environment variables (documented in docs/configuration.md)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_REGIONS = "US,CA,GB,AU,NZ,IL"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BYS_", extra="ignore")

    # Where things live
    data_dir: Path = Path(".byourside")
    database_url: str | None = None  # default: sqlite+aiosqlite:///<data_dir>/byourside.db

    # HTTP server
    host: str = "127.0.0.1"
    port: int = 8000
    public_base_url: str | None = None  # used to build recordingUrl; default http://host:port

    # Workers
    workers: int = 4  # concurrent calls per worker process
    run_workers: bool = True  # `serve` runs workers in-process
    lease_seconds: float = 15.0
    heartbeat_seconds: float = 3.0
    poll_seconds: float = 0.5

    # Calls
    max_duration_seconds: int = Field(600, ge=10, le=14_400)
    ring_timeout_seconds: float = 30.0
    default_voice: str = "alloy"
    default_language: str = "en-US"

    # Providers, picked by name from one registry
    telephony: str = "simulator"
    brain: str = "offline"
    sim_time_scale: float = Field(1.0, ge=0.0)  # 0 = instant, 0.1 = ten times faster than real time
    sim_scenarios_file: Path | None = None

    # Guardrails
    allowed_regions: str = DEFAULT_REGIONS
    irsf_extra_file: Path | None = None
    default_calls_per_minute: int = 30
    default_max_concurrent_calls: int = 5
    default_monthly_minutes: int = 1_000

    # Webhooks (local development only: never enable these in production)
    webhook_allow_http: bool = False
    webhook_allow_private: bool = False

    # Logging
    log_level: str = "info"
    log_json: bool = False

    @field_validator("allowed_regions")
    @classmethod
    def _upper_regions(cls, value: str) -> str:
        return ",".join(r.strip().upper() for r in value.split(",") if r.strip())

    @cached_property
    def allowed_region_set(self) -> frozenset[str]:
        return frozenset(self.allowed_regions.split(","))

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'byourside.db').resolve()}"

    @property
    def effective_public_base_url(self) -> str:
        return (self.public_base_url or f"http://{self.host}:{self.port}").rstrip("/")
