"""Settings from ``BYS_`` environment variables (documented in docs/configuration.md)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:  # imported when first used: the API process never loads the voice engine
    from byourside_server.telephony.sip.config import SipConfig
    from byourside_server.voice.factory import VoiceConfig

DEFAULT_REGIONS = "US,CA,GB,AU,NZ,IL"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BYS_", extra="ignore")

    # Where things live
    data_dir: Path = Path(".byourside")
    database_url: str | None = None  # default: sqlite+aiosqlite:///<data_dir>/byourside.db
    # A database that stops answering fails a request with 503 store_error within about these.
    db_connect_timeout_seconds: float = Field(5.0, gt=0, le=300)
    db_statement_timeout_seconds: float = Field(5.0, gt=0, le=3600)

    # HTTP server
    host: str = "127.0.0.1"
    port: int = 8000
    public_base_url: str | None = None  # used to build recordingUrl; default http://host:port
    signing_secret: str | None = None  # signs recording URLs; default: generated once in the data dir
    recording_url_ttl_seconds: int = Field(3600, ge=60, le=7 * 86400)
    metrics_token: str | None = None  # when set, GET /metrics needs "Authorization: Bearer <token>"
    metrics_window_seconds: int = Field(3600, ge=60, le=7 * 86400)  # /metrics: calls ended this recently
    # An agent key verified this recently is not looked up again (0: every request reads the store).
    # A key revoked through another process (the CLI, another API process) stops working within this.
    api_key_cache_seconds: float = Field(2.0, ge=0, le=60)

    # Recordings (recordings/): "local" files under the data dir, or "s3" (any S3-compatible endpoint).
    # With s3, the endpoint, bucket and both keys must be set (checked when a process starts).
    recording_store: Literal["local", "s3"] = "local"
    s3_endpoint_url: str | None = None  # e.g. https://s3.eu-west-1.amazonaws.com or http://minio:9000
    s3_bucket: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_prefix: str = "recordings/"  # object key: <prefix><call id>.wav

    # Dashboard (/dashboard)
    dashboard_session_hours: float = Field(12.0, gt=0, le=24 * 30)  # a sign-in lasts this long
    dashboard_link_minutes: float = Field(30.0, gt=0, le=7 * 24 * 60)  # one-time sign-in links expire
    # Failed sign-ins allowed per email and per client address within the window, then 429.
    dashboard_sign_in_failures_per_email: int = Field(5, ge=1)
    dashboard_sign_in_failures_per_ip: int = Field(20, ge=1)
    dashboard_sign_in_window_seconds: int = Field(900, ge=1)
    # Live pages (server-sent events): how often an open page's stream checks the store for changes,
    # and how long one stream lasts before the browser reconnects (re-checking the session).
    dashboard_live_seconds: float = Field(1.0, gt=0, le=60)
    dashboard_live_stream_seconds: float = Field(300.0, ge=0, le=3600)

    # Workers
    workers: int = 4  # concurrent calls per worker process
    run_workers: bool = True  # `serve` runs workers in-process
    lease_seconds: float = 15.0
    heartbeat_seconds: float = 3.0
    poll_seconds: float = 0.5
    # How long a call in hand keeps retrying a status write while the database is unreachable.
    call_write_retry_seconds: float = Field(600.0, ge=0)

    # Calls
    max_duration_seconds: int = Field(600, ge=10, le=14_400)
    ring_timeout_seconds: float = 30.0
    default_voice: str = "alloy"
    default_language: str = "en-US"

    # Providers, picked by name from one registry
    telephony: str = "simulator"
    brain: str = "auto"  # auto: "llm" when BYS_LLM_BASE_URL and BYS_LLM_MODEL are set, else "offline"
    sim_time_scale: float = Field(1.0, ge=0.0)  # 0 = instant, 0.1 = ten times faster than real time
    sim_scenarios_file: Path | None = None

    # LLM brain (any OpenAI-compatible chat-completions endpoint)
    llm_base_url: str | None = None  # e.g. https://api.openai.com/v1 or http://127.0.0.1:8080/v1
    llm_api_key: str | None = None
    llm_model: str | None = None
    llm_timeout_seconds: float = Field(30.0, gt=0)
    llm_max_retries: int = Field(2, ge=0, le=10)
    llm_backoff_seconds: float = Field(0.5, ge=0)
    llm_temperature: float | None = 0.3
    llm_stream: bool = True
    sim_personas: str = "scripted"  # "llm": simulator personas are played by the configured model
    # Offline agent: "rules" reads values with the understanding layer only; "model" also asks a small
    # packaged model (agent/understanding/small_model.py, extra "small-model") where the rules read nothing.
    offline_extractor: Literal["rules", "model"] = "rules"
    offline_model_path: str | None = None  # a GGUF instead of the packaged Qwen2.5-Coder-0.5B-Instruct
    offline_model_threads: int = Field(2, ge=1, le=64)

    # Realtime speech-to-speech brains (agent/realtime/): "off", "openai" or "gemini". With one, the model
    # conducts every call on its audio (needs an audio carrier, BYS_TELEPHONY=sip) and the brain above
    # (BYS_BRAIN: llm or offline) writes the summary and fields afterwards.
    realtime: str = "off"
    realtime_retries: int = Field(2, ge=0, le=10)  # new sessions tried when the provider drops mid-call
    openai_api_key: str | None = None
    openai_realtime_model: str = "gpt-realtime"
    openai_realtime_url: str = "wss://api.openai.com/v1/realtime"
    gemini_api_key: str | None = None
    gemini_live_model: str = "gemini-live-2.5-flash-preview"
    gemini_live_url: str = ("wss://generativelanguage.googleapis.com/ws/"
                            "google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent")

    # Carriers that reach us over the internet (BYS_TELEPHONY=twilio or telnyx): docs/carriers.md
    # The address at which the carrier reaches this process's carrier routes (status callbacks, the
    # media WebSocket); with separate worker processes, each worker's own address (it holds the media).
    public_url: str | None = None  # e.g. https://calls.example.com or https://media.example.com/worker-1
    twilio_account_sid: str | None = None  # AC...
    twilio_auth_token: str | None = None  # the account's Auth Token: signs Twilio's requests to us
    twilio_api_key_sid: str | None = None  # optional SK... API key for REST calls (else the Auth Token)
    twilio_api_key_secret: str | None = None
    twilio_api_url: str = "https://api.twilio.com"  # the REST API's base (a fake in tests)
    # Twilio's answering-machine detection: "off", "Enable" or "DetectMessageEnd" (asynchronous).
    twilio_machine_detection: Literal["off", "Enable", "DetectMessageEnd"] = "off"
    telnyx_api_key: str | None = None  # KEY...: Call Control and the numbers API
    telnyx_public_key: str | None = None  # base64 Ed25519 public key: checks the webhooks' signatures
    telnyx_connection_id: str | None = None  # the Call Control Application that places the calls
    telnyx_api_url: str = "https://api.telnyx.com"  # the API's base (a fake in tests)
    # Telnyx's answering-machine detection: "off", "detect", "detect_beep" or "premium".
    telnyx_machine_detection: Literal["off", "detect", "detect_beep", "premium"] = "off"
    # Caller IDs the SIP trunk lets us present (comma-separated E.164): what `numbers add` accepts with sip.
    sip_caller_ids: str = ""

    # Guardrails
    allowed_regions: str = DEFAULT_REGIONS
    irsf_extra_file: Path | None = None
    default_calls_per_minute: int = 30
    default_max_concurrent_calls: int = 5
    default_monthly_minutes: int = 1_000
    # Calling hours in the callee's local time (compliance/hours.py), for accounts that set none:
    # HH:MM 24-hour start and end, and the days (mon..sun, ranges like mon-fri).
    calling_hours_start: str = "08:00"
    calling_hours_end: str = "21:00"
    calling_hours_days: str = "mon-sun"
    # Consent and retention (compliance/consent.py, compliance/retention.py), for accounts that set none.
    record_calls: bool = True  # keep a recording of each call (false: none is kept)
    # When the agent says the call is recorded: "required" (callees in all-party-consent places) or "always".
    recording_notice: Literal["required", "always"] = "required"
    recording_retention_days: int = Field(0, ge=0)  # recordings deleted this many days after the call; 0: kept
    transcript_retention_days: int = Field(0, ge=0)  # transcripts (and summaries) likewise; 0: kept
    retention_purge_seconds: float = Field(3600.0, gt=0)  # how often a worker purges what has expired

    # Webhooks (local development only: never enable these in production)
    webhook_allow_http: bool = False
    webhook_allow_private: bool = False
    webhook_timeout_seconds: float = Field(15.0, gt=0, le=120)  # a 2xx within this is success
    # Delay in seconds before each attempt: the first attempt, then each retry; after the last, failed.
    webhook_retry_schedule: str = "0,5,300,1800,7200,18000,36000,36000"
    webhook_retry_jitter: float = Field(0.1, ge=0, le=1)  # each delay varies by +/- this fraction
    webhook_secret_grace_seconds: float = Field(86_400, ge=0)  # old secret still signs after rotation
    webhook_concurrency: int = Field(8, ge=1)  # attempts in flight per delivery loop
    webhook_poll_seconds: float = Field(1.0, gt=0)
    webhook_delivery: bool = True  # `serve` (with workers) and `worker` run the delivery loop

    # Logging
    log_level: str = "info"
    log_json: bool = False

    # The two sub-trees, ``sip`` (BYS_SIP_*) and ``voice`` (BYS_STT_*, BYS_TTS_*, BYS_VAD_*,
    # BYS_TURN_*, BYS_BARGE_IN_*...), read the same environment when used. Overrides given
    # here win over it, as for every other field: ``Settings(sip_overrides={"port": 5062})``.
    sip_overrides: dict[str, Any] = Field(default_factory=dict)
    voice_overrides: dict[str, Any] = Field(default_factory=dict)

    @field_validator("allowed_regions")
    @classmethod
    def _upper_regions(cls, value: str) -> str:
        return ",".join(r.strip().upper() for r in value.split(",") if r.strip())

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _check_retry_schedule(cls, value: str) -> str:
        try:
            delays = [float(part) for part in value.split(",") if part.strip()]
        except ValueError:
            raise ValueError("must be comma-separated seconds, e.g. 0,5,300") from None
        if not delays or any(d < 0 for d in delays):
            raise ValueError("needs at least one delay, none negative")
        return value

    @field_validator("calling_hours_days")
    @classmethod
    def _check_calling_days(cls, value: str) -> str:
        from byourside_server.compliance.hours import CallingHoursError, parse_days

        try:
            parse_days(value)
        except CallingHoursError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("calling_hours_start", "calling_hours_end")
    @classmethod
    def _check_calling_clock(cls, value: str) -> str:
        from byourside_server.compliance.hours import CallingHoursError, parse_clock

        try:
            parse_clock(value, "BYS_CALLING_HOURS_START/END")
        except CallingHoursError as exc:
            raise ValueError(str(exc)) from None
        return value

    @cached_property
    def allowed_region_set(self) -> frozenset[str]:
        return frozenset(self.allowed_regions.split(","))

    @property
    def effective_brain(self) -> str:
        """The brain ``auto`` resolves to: the LLM when one is configured, else the offline agent."""
        if self.brain.strip().lower() in ("", "auto"):
            return "llm" if self.llm_base_url and self.llm_model else "offline"
        return self.brain

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'byourside.db').resolve()}"

    def create_data_dir(self) -> Path:
        """The data directory, created owner-only (0700) when missing: it holds the SQLite store,
        the recording-link signing key and call recordings."""
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self.data_dir

    @property
    def sip(self) -> SipConfig:
        """The SIP trunk settings (telephony/sip/config.py): the environment, then ``sip_overrides``."""
        from byourside_server.telephony.sip.config import SipConfig

        return SipConfig(**self.sip_overrides)

    @property
    def voice(self) -> VoiceConfig:
        """The voice engine's settings (voice/factory.py): the environment, then ``voice_overrides``."""
        from byourside_server.voice.factory import VoiceConfig

        return VoiceConfig(**self.voice_overrides)

    @property
    def effective_public_base_url(self) -> str:
        return (self.public_base_url or f"http://{self.host}:{self.port}").rstrip("/")
