"""All configuration, from the environment (prefix ``EVENTLY_``) or a ``.env`` file."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_JWT_SECRET = "dev-only-jwt-secret-change-me-0123456789abcdef"
DEV_WEBHOOK_SECRET = "dev-only-webhook-secret-change-me"
# well known (in the source): production refuses it, like the dev JWT secret
DEV_TICKET_SIGNING_KEY = "VkF0HM/mroS0rqTKlJhm8LdS/cZbqJjJYpyZPXfzfxI="

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(spec: str) -> tuple[IPNetwork, ...]:
    """``"10.0.0.0/8, 192.0.2.7"`` → networks (an address is a /32 or /128)."""
    networks = []
    for item in spec.split(","):
        if item.strip():
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError as exc:
                raise ValueError(f"not an IP address or CIDR: {item.strip()!r}") from exc
    return tuple(networks)


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

    payment_provider: Literal["simulated", "stripe"] = "simulated"
    payment_webhook_secret: str = DEV_WEBHOOK_SECRET
    webhook_tolerance_seconds: int = Field(300, ge=1)
    # Stripe (payment_provider="stripe"): the secret API key (sk_live_/sk_test_/rk_...), the
    # signing secret of the webhook endpoint (whsec_...), and another API base only for a
    # local emulator such as localstripe (None = Stripe's own).
    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str | None = None
    # sent with each confirmation when set: the page Stripe returns a buyer to after a
    # redirect-based authentication (Stripe requires it if the account enables such methods)
    stripe_return_url: str | None = None

    # storefront (issue 19, api/storefront/): the publishable key and the Stripe.js URL the
    # checkout page loads when payment_provider="stripe" (localstripe serves a stand-in at
    # <its base>/js.stripe.com/v3/); the page's Content-Security-Policy allows that origin only
    stripe_publishable_key: str | None = None
    stripe_js_url: str = "https://js.stripe.com/v3/"

    # argon2id parameters: "rfc9106" (64 MiB, t=3, p=4); "fast" only for test servers
    password_hash_profile: Literal["rfc9106", "fast"] = "rfc9106"

    bootstrap_admin_email: str | None = None
    bootstrap_admin_password: str | None = None

    login_rate_limit: int = Field(10, ge=1, description="login attempts per window per IP/email")
    register_rate_limit: int = Field(10, ge=1)
    rate_limit_window_seconds: int = Field(60, ge=1)
    reserve_rate_limit: int = Field(30, ge=1, description="reserve requests per minute per user")
    # issue 28 (lockout, refresh races): failed logins per window for one email from all
    # addresses together, counted after the password check; beyond it a wrong password is
    # answered 429 after a delay, while the right password (from anywhere) still logs in
    login_email_failure_limit: int = Field(50, ge=1)
    login_failure_delay_seconds: float = Field(1.0, ge=0, le=10)
    # the same refresh token presented again within this many seconds gets the same new pair
    # (two tabs refreshing at once) instead of revoking the session (evently/tokens.py)
    refresh_reuse_grace_seconds: float = Field(10.0, ge=0, le=60)
    # account recovery and verification (issue 32, docs/buyers.md): the reset link's life, and
    # how many reset requests one email / one address may make per window (always 202)
    password_reset_minutes: int = Field(30, ge=1, le=24 * 60)
    password_reset_email_limit: int = Field(3, ge=1)
    password_reset_ip_limit: int = Field(20, ge=1)
    password_reset_window_seconds: int = Field(3600, ge=1)
    email_verification_hours: int = Field(72, ge=1)

    # ~ holds/s x latency budget (Little's law): 16 kept the flash sale's p99 near 1 s at
    # ~25 holds/s on the 2-core dev box; 256 let holds queue for 10+ s (docs/performance.md)
    reserve_max_in_flight: int = Field(
        16, ge=1, description="reserve requests in flight per API process before they wait"
    )
    # at the cap, a reserve waits (first come, first served) this long at most for a slot, and
    # at most this many wait; beyond either it is shed with 503 overloaded + Retry-After.
    # Waiting is cheaper than a blind retry for everyone (docs/performance.md); 0 sheds at once
    reserve_max_wait_seconds: float = Field(2.0, ge=0)
    reserve_max_waiting: int = Field(256, ge=0)
    # the waiting room (evently/waitingroom.py, docs/waiting-room.md)
    queue_admission_seconds: int = Field(
        120, ge=5, description="how long an admission token lets its buyer reserve"
    )
    # the tick is a Temporal timer, and the server fires a timer of under a second after ~1 s
    # (measured on the dev server, Server 1.32: 0.2 s and 0.5 s sleeps took 1.006 s each): a
    # shorter tick would only make ``rate`` (admissions per second) a lie
    queue_tick_seconds: float = Field(
        1.0, ge=1.0, le=60, description="admission workflow tick (a Temporal timer: >= 1 s)"
    )
    queue_start_rate: float = Field(15.0, gt=0, description="admissions/s when a line starts")
    queue_min_rate: float = Field(2.5, gt=0, description="admissions/s never below this")
    queue_max_rate: float = Field(2000.0, gt=0, description="admissions/s never above this")
    queue_saturation_seconds: int = Field(
        10, ge=1, description="an `auto` queue stays on this long after the last saturation"
    )
    # every request answers within this (time to its first byte): a 503 `deadline_exceeded`
    # with Retry-After when it cannot do better; below any sensible client timeout
    request_deadline_seconds: float = Field(10.0, gt=0)
    # an idle keep-alive connection is closed after this long: longer than the idle timeout of
    # the proxies and clients in front (load balancers 60 s, httpx 5 s), so a client never
    # sends on a connection the server is closing at that moment (an unanswered request)
    keep_alive_seconds: float = Field(75.0, gt=0)
    # how long a reserve waits for its hold before answering 202 pending (with the booking id)
    reserve_timeout_seconds: float = Field(7.0, gt=0)
    max_tickets_per_booking: int = Field(10, ge=1)

    worker_queues: str = "booking,search,payments,mail,webhooks"
    worker_max_concurrent_activities: int = Field(100, ge=1)
    worker_max_concurrent_workflow_tasks: int = Field(100, ge=1)
    worker_graceful_shutdown_seconds: float = Field(10.0, ge=0)
    # workflows kept in a worker's memory (sticky cache): more saves replays, costs memory
    worker_max_cached_workflows: int = Field(1000, ge=0)
    worker_metrics_port: int | None = None
    # workflow-task polls a worker keeps open, and the share of them on the task queue itself
    # (the rest on the worker's sticky queue): a new booking's workflow task is taken at once
    # by a waiting poll instead of being stored and read back (docs/performance.md)
    worker_workflow_task_pollers: int = Field(16, ge=2)
    worker_nonsticky_poll_ratio: float = Field(0.75, gt=0, le=1)
    # how production runs workflow code: "off" (no sandbox; determinism is guarded by the
    # strictly sandboxed tests and replays in CI) or "passthrough" (workers/main.py)
    worker_sandbox: Literal["off", "passthrough"] = "off"

    # HTTP behaviour (docs/api.md, "HTTP behaviour"): request bodies above this are refused with 413
    # before they are read (the payment webhooks have their own, smaller limit)
    max_body_bytes: int = Field(1024 * 1024, ge=1)
    # browser origins allowed to call the API (CORS, with credentials), comma-separated
    # exact origins such as "https://shop.example.com"; none by default
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # ---- behind a reverse proxy (api/proxies.py) ----
    trusted_proxies: str = Field(
        "",
        description=(
            "comma-separated IPs/CIDRs of the reverse proxies in front of the API; only a request"
            " whose peer is one of them has its client address taken from the forwarded header"
            " (empty: forwarded headers are ignored)"
        ),
    )
    forwarded_header: Literal["x-forwarded-for", "forwarded"] = Field(
        "x-forwarded-for",
        description="the header the trusted proxies append to; the other one is never read",
    )

    # ---- tracing (evently/infra/tracing.py) ----
    otlp_endpoint: str | None = Field(
        None,
        description=(
            "OTLP/HTTP (protobuf) collector base URL, e.g. http://otel-collector:4318; spans go"
            " to <url>/v1/traces. Unset: no tracing is installed at all"
        ),
    )

    # tickets and mail (issue 16): docs/architecture.md "Tickets and email"
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

    # ---- organizer webhooks (evently/webhooks/, workflows/webhooks/) ----
    # retries: after attempt n fails, wait min(initial x 2^(n-1), max interval); no attempt is
    # made later than the horizon after the first
    webhook_retry_initial_seconds: float = Field(5.0, gt=0)
    webhook_retry_max_interval_seconds: float = Field(6 * 3600.0, gt=0)
    webhook_retry_horizon_seconds: float = Field(3 * 86400.0, gt=0)
    webhook_timeout_seconds: float = Field(10.0, gt=0, description="one delivery attempt")
    webhook_relay_poll_seconds: float = Field(1.0, gt=0, description="outbox polling interval")
    # destinations (issue 28, evently/webhooks/targets.py, docs/api.md "Webhooks"): only public
    # addresses, in every environment. true allows loopback/private/link-local ones too (and
    # plain http in production): tests and `evently dev` turn it on for local receivers
    webhook_allow_private_targets: bool = False
    # comma-separated IPs/CIDRs an operator trusts as webhook destinations although they are
    # not public (an internal receiver), e.g. "10.20.0.0/16"
    webhook_allowed_networks: str = ""

    # ---- operator surfaces (issue 28, docs/operations.md "Metrics") ----
    # the API's Prometheus metrics on a port of their own (prometheus_client's server, started
    # by `evently api`); GET /metrics on the API port is then off unless a token is set
    metrics_port: int | None = Field(None, ge=1, le=65535)
    # GET /metrics on the API port requires "Authorization: Bearer <token>" when set; in
    # production without a token the route is off (404)
    metrics_token: SecretStr | None = None
    # /docs, /redoc and /openapi.json; unset: on in development/test, off in production
    api_docs: bool | None = None

    # ---- connection budget (issue 33, docs/deployment.md "Connection budget") ----
    # Postgres's max_connections as the deployment declares it; when set, every process
    # refuses to start if the processes the deployment may run at most, each with a full pool
    # (pool size + overflow), plus the connections kept for others, could exceed it
    postgres_max_connections: int | None = Field(None, ge=1)
    postgres_reserved_connections: int = Field(
        10,
        ge=0,
        description=(
            "connections of Postgres not for Evently's pools: superuser_reserved_connections,"
            " migrations, psql, and Temporal's own pools when it shares the server"
        ),
    )
    api_processes: int = Field(
        1, ge=1, description="API processes the deployment may run at most (replicas x --workers)"
    )
    worker_processes: int = Field(
        1, ge=1, description="worker processes the deployment may run at most (all queues)"
    )

    # ---- live streams (api/live/, evently/live_hub.py; issue 28) ----
    streams_per_client: int = Field(
        20, ge=1, description="concurrent SSE streams per client address, per API process"
    )
    streams_per_user: int = Field(
        10, ge=1, description="concurrent SSE streams per signed-in user, per API process"
    )
    stream_idle_seconds: float = Field(
        1800.0, gt=0, description="a stream with no message for this long closes"
    )
    stream_session_check_seconds: float = Field(
        30.0, gt=0, description="how often a user's stream re-reads its session's revocation"
    )

    # ---- Temporal anywhere (issue 33, docs/temporal.md) ----
    # where/how to connect also comes from Temporal's own environment configuration
    # (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*, TOML profiles);
    # the two EVENTLY_TEMPORAL_ADDRESS/NAMESPACE settings above win when set
    temporal_codec_keys: SecretStr | None = Field(
        None,
        description=(
            "payload encryption keys `kid:base64-32-bytes,...` (`evently temporal keygen`): the"
            " first encrypts, all decrypt (rotation); unset: payloads are stored in clear"
        ),
    )
    temporal_codec_cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="origins of the Temporal UI allowed to call /codec/* (e.g. http://localhost:8233)",
    )

    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

    @field_validator("cors_origins", "temporal_codec_cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part for part in (p.strip() for p in value.split(",")) if part]
        return value

    @field_validator("cors_origins", "temporal_codec_cors_origins")
    @classmethod
    def _exact_origins(cls, origins: list[str]) -> list[str]:
        """Exact ``scheme://host[:port]`` origins (what browsers send in ``Origin``)."""
        normalized = []
        for origin in origins:
            parts = urlsplit(origin.strip().rstrip("/").lower())
            try:
                parts.port  # noqa: B018 (raises on a port out of range)
            except ValueError:
                parts = parts._replace(scheme="")
            if (
                parts.scheme not in ("http", "https")
                or not parts.hostname
                or "@" in parts.netloc
                or parts.path
                or parts.query
                or parts.fragment
                or "*" in origin
            ):
                raise ValueError(
                    f"EVENTLY_CORS_ORIGINS: {origin!r} is not an origin like https://shop.example.com"
                    " (no wildcards, paths or trailing parts)"
                )
            netloc = parts.netloc
            if parts.port == {"http": 80, "https": 443}[parts.scheme]:
                netloc = netloc.rsplit(":", 1)[0]  # browsers leave a default port out
            normalized.append(f"{parts.scheme}://{netloc}")
        return normalized

    @model_validator(mode="after")
    def _refuse_dev_defaults_in_production(self) -> Settings:
        if self.env != "production":
            return self
        problems = []
        if self.jwt_secret == DEV_JWT_SECRET or len(self.jwt_secret) < 32:
            problems.append("EVENTLY_JWT_SECRET must be set to a random value of 32+ characters")
        # the generic webhook serves the simulated provider only (off with Stripe)
        if self.generic_webhook_enabled and self.payment_webhook_secret == DEV_WEBHOOK_SECRET:
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
        if self.payment_provider == "stripe":
            if not _secret(self.stripe_secret_key):
                problems.append("EVENTLY_STRIPE_SECRET_KEY must be set to the Stripe secret key")
            if not _secret(self.stripe_webhook_secret):
                problems.append(
                    "EVENTLY_STRIPE_WEBHOOK_SECRET must be set to the webhook signing secret"
                )
        if problems:
            raise ValueError(
                "refusing to start in production with development defaults: " + "; ".join(problems)
            )
        return self

    @model_validator(mode="after")
    def _fits_postgres_max_connections(self) -> Settings:
        """API x workers x pool <= max_connections, refused at start-up (not found at 3 a.m.
        as ``too many clients already`` in the middle of an on-sale)."""
        limit = self.postgres_max_connections
        if limit is not None and self.database_connections_at_most > limit:
            raise ValueError(
                f"connection budget exceeded: {self.connection_budget_text} > "
                f"EVENTLY_POSTGRES_MAX_CONNECTIONS={limit}; lower EVENTLY_DATABASE_POOL_SIZE /"
                " EVENTLY_DATABASE_MAX_OVERFLOW or the process counts, or raise Postgres's"
                " max_connections"
            )
        return self

    @property
    def database_pool_at_most(self) -> int:
        """Connections one process's pool may open (pool size + overflow)."""
        return self.database_pool_size + self.database_max_overflow

    @property
    def database_connections_at_most(self) -> int:
        processes = self.api_processes + self.worker_processes
        return processes * self.database_pool_at_most + self.postgres_reserved_connections

    @property
    def connection_budget_text(self) -> str:
        return (
            f"({self.api_processes} API + {self.worker_processes} worker processes)"
            f" x {self.database_pool_at_most} (EVENTLY_DATABASE_POOL_SIZE="
            f"{self.database_pool_size} + EVENTLY_DATABASE_MAX_OVERFLOW="
            f"{self.database_max_overflow}) + {self.postgres_reserved_connections} reserved"
            f" = {self.database_connections_at_most}"
        )

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_proxy_networks(cls, value: str) -> str:
        parse_networks(value)  # refuse a typo at start-up rather than trust nothing silently
        return value

    @property
    def trusted_proxy_networks(self) -> tuple[IPNetwork, ...]:
        return parse_networks(self.trusted_proxies)

    @property
    def generic_webhook_enabled(self) -> bool:
        """``POST /payments/webhook`` (Evently-Signature) is the simulated provider's event
        channel; with Stripe, only Stripe's signed webhook can confirm a payment."""
        return self.payment_provider == "simulated"

    @property
    def stripe_webhook_enabled(self) -> bool:
        return bool(_secret(self.stripe_webhook_secret))

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _valid_webhook_networks(cls, value: str) -> str:
        parse_networks(value)
        return value

    @property
    def api_docs_enabled(self) -> bool:
        return self.api_docs if self.api_docs is not None else self.env != "production"

    @property
    def metrics_route_token(self) -> str | None:
        return _secret(self.metrics_token) or None

    @property
    def metrics_route_enabled(self) -> bool:
        """``GET /metrics`` on the API port: with a token (then required), or outside
        production when no metrics port of its own is set."""
        if self.metrics_route_token:
            return True
        return self.env != "production" and self.metrics_port is None

    @property
    def webhook_allowed_network_list(self) -> tuple[IPNetwork, ...]:
        return parse_networks(self.webhook_allowed_networks)

    @property
    def webhook_require_https(self) -> bool:
        """Production endpoints use https (unless private targets are allowed there)."""
        return self.env == "production" and not self.webhook_allow_private_targets

    @property
    def state_path(self) -> Path:
        return self.state_dir.expanduser().resolve()

    @property
    def json_logs(self) -> bool:
        if self.log_format == "auto":
            return self.env == "production"
        return self.log_format == "json"


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value().strip() if value is not None else ""


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
