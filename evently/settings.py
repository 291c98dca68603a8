"""All configuration, from the environment (prefix ``EVENTLY_``) or a ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "dev-only-jwt-secret-change-me-0123456789abcdef"
DEV_WEBHOOK_SECRET = "dev-only-webhook-secret-change-me"
# well known (in the source): production refuses it, like the dev JWT secret
DEV_TICKET_SIGNING_KEY = "VkF0HM/mroS0rqTKlJhm8LdS/cZbqJjJYpyZPXfzfxI="


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="EVENTLY_", env_file=".env", extra="ignore", validate_default=True
    )

    env: Literal["development", "test", "production"] = "development"
    state_dir: Path = Path(".evently")

    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    public_url: str | None = None

    # Server URLs. Unset means "the embedded server `evently dev` runs on state_dir".
    database_url: str | None = None
    redis_url: str | None = None
    temporal_address: str | None = None
    temporal_namespace: str = "default"
    temporal_ui_url: str | None = None
    elasticsearch_url: str | None = None
    elasticsearch_index: str = "evently-events"

    # Embedded dev stack ports (Postgres and Redis listen on Unix sockets in state_dir).
    temporal_port: int = Field(7233, ge=1, le=65535)
    temporal_ui_port: int = Field(8233, ge=1, le=65535)

    database_pool_size: int = Field(20, ge=1)
    database_max_overflow: int = Field(20, ge=0)

    hold_seconds: int = Field(300, ge=1)
    waitlist_offer_seconds: int = Field(600, ge=1)

    jwt_secret: str = DEV_JWT_SECRET
    access_token_minutes: int = Field(15, ge=1)
    refresh_token_days: int = Field(7, ge=1)

    payment_provider: str = "simulated"
    payment_webhook_secret: str = DEV_WEBHOOK_SECRET
    webhook_tolerance_seconds: int = Field(300, ge=1)

    # argon2id parameters: "rfc9106" (64 MiB, t=3, p=4); "fast" only for test servers
    password_hash_profile: Literal["rfc9106", "fast"] = "rfc9106"

    bootstrap_admin_email: str | None = None
    bootstrap_admin_password: str | None = None

    login_rate_limit: int = Field(10, ge=1, description="login attempts per window per IP/email")
    register_rate_limit: int = Field(10, ge=1)
    rate_limit_window_seconds: int = Field(60, ge=1)
    reserve_rate_limit: int = Field(30, ge=1, description="reserve requests per minute per user")

    # ~ holds/s x latency budget (Little's law): 16 kept the flash sale's p99 near 1 s at
    # ~25 holds/s on the 2-core dev box; 256 let holds queue for 10+ s (docs/performance.md)
    reserve_max_in_flight: int = Field(
        16, ge=1, description="reserve requests in flight per API process before 503"
    )
    reserve_timeout_seconds: float = Field(10.0, gt=0)
    max_tickets_per_booking: int = Field(10, ge=1)

    worker_queues: str = "booking,search,payments,mail"
    worker_max_concurrent_activities: int = Field(100, ge=1)
    worker_max_concurrent_workflow_tasks: int = Field(100, ge=1)
    worker_graceful_shutdown_seconds: float = Field(10.0, ge=0)
    # workflows kept in a worker's memory (sticky cache): more saves replays, costs memory
    worker_max_cached_workflows: int = Field(1000, ge=0)
    worker_metrics_port: int | None = None

    # tickets and mail (issue 16): README "Tickets, check-in and email"
    ticket_signing_key: str = Field(
        DEV_TICKET_SIGNING_KEY,
        description="Ed25519 private key: base64 of the 32-byte seed, or a PKCS#8 PEM",
    )
    ticket_verify_keys: str = Field(
        "", description="extra public keys (base64, comma-separated) still accepted: rotation"
    )
    smtp_url: str | None = Field(
        None, description="smtp://, smtp+starttls:// or smtps://user:pass@host:port; unset: no mail"
    )
    mail_from: str = "Evently <tickets@evently.localhost>"
    dev_smtp_port: int = Field(1025, ge=0, le=65535, description="`evently dev`'s SMTP server")
    mail_sweep_seconds: float = Field(
        60.0, gt=0, description="the outbox is also checked this often without a wake-up"
    )

    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

    @model_validator(mode="after")
    def _refuse_dev_defaults_in_production(self) -> Settings:
        if self.env != "production":
            return self
        problems = []
        if self.jwt_secret == DEV_JWT_SECRET or len(self.jwt_secret) < 32:
            problems.append("EVENTLY_JWT_SECRET must be set to a random value of 32+ characters")
        if self.payment_webhook_secret == DEV_WEBHOOK_SECRET:
            problems.append("EVENTLY_PAYMENT_WEBHOOK_SECRET must be set to the provider's secret")
        if self.password_hash_profile != "rfc9106":
            problems.append("EVENTLY_PASSWORD_HASH_PROFILE must be rfc9106 (the default)")
        if _is_dev_ticket_key(self.ticket_signing_key):
            problems.append(
                "EVENTLY_TICKET_SIGNING_KEY must be set to a secret Ed25519 key "
                "(`evently tickets keygen`)"
            )
        if self.payment_provider == "simulated":
            problems.append(
                "EVENTLY_PAYMENT_PROVIDER=simulated is for development; configure a real provider"
            )
        if problems:
            raise ValueError(
                "refusing to start in production with development defaults: " + "; ".join(problems)
            )
        return self

    @property
    def state_path(self) -> Path:
        return self.state_dir.expanduser().resolve()

    @property
    def json_logs(self) -> bool:
        if self.log_format == "auto":
            return self.env == "production"
        return self.log_format == "json"


def _is_dev_ticket_key(value: str) -> bool:
    """The dev key in any spelling (base64 seed or PEM); an unreadable key counts too."""
    from evently.tickets.signing import key_id, load_private_key

    try:
        key = load_private_key(value)
    except ValueError:
        return True
    return key_id(key.public_key()) == key_id(load_private_key(DEV_TICKET_SIGNING_KEY).public_key())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
