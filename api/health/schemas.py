"""What ``GET /health/ready`` answers when the API can serve."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Readiness(BaseModel):
    status: Literal["ready", "degraded"] = Field(
        description="`degraded`: serving, but an accelerator (Redis) or search is down"
    )
    checks: dict[str, str] = Field(
        description="every check by name (postgres, temporal, redis, search): `ok` or the error"
    )
    degraded: list[str] = Field(description="the optional checks that failed (empty when ready)")
    rate_limits: Literal["ok", "degraded: per-process"] = Field(
        description="how the login and sign-up limits count: `ok` (in Redis, across processes) "
        "or `degraded: per-process` (Redis unavailable: each API process counts on its own)"
    )
