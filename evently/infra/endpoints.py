"""Where the servers are: settings first, else the embedded stack on the state dir."""

from __future__ import annotations

from dataclasses import dataclass

from evently.infra.embedded import EmbeddedPostgres, EmbeddedRedis, StackInfo
from evently.settings import Settings


@dataclass(frozen=True)
class Endpoints:
    database_url: str
    redis_url: str
    temporal_address: str
    temporal_ui_url: str | None
    smtp_url: str | None = None  # EVENTLY_SMTP_URL, else `evently dev`'s local server, else none


def resolve_endpoints(settings: Settings) -> Endpoints:
    state = settings.state_path
    info = StackInfo.read(state)
    database_url = settings.database_url or (
        info.database_url if info else EmbeddedPostgres(state / "postgres").url
    )
    redis_url = settings.redis_url or (
        info.redis_url if info else EmbeddedRedis(state / "redis").url
    )
    temporal = settings.temporal_address or (
        info.temporal_address if info else f"127.0.0.1:{settings.temporal_port}"
    )
    ui = settings.temporal_ui_url or (
        info.temporal_ui_url
        if info and not settings.temporal_address
        else (
            None if settings.temporal_address else f"http://127.0.0.1:{settings.temporal_ui_port}"
        )
    )
    smtp = settings.smtp_url or (info.smtp_url if info else None)
    return Endpoints(database_url, redis_url, temporal, ui, smtp)


def sync_database_url(url: str) -> str:
    """The libpq form of an asyncpg SQLAlchemy URL (for psql, pgbench and friends)."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)
