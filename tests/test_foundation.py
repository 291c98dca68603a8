"""Settings, migrations, CLI packaging, readiness and docker-compose wiring."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from evently.infra.resources import Resources, open_resources
from evently.settings import Settings
from tests.support.temporal import AppFactory

ROOT = Path(__file__).resolve().parent.parent


def test_production_refuses_development_secrets() -> None:
    with pytest.raises(ValidationError) as err:
        Settings(env="production", _env_file=None)  # type: ignore[call-arg]
    msg = str(err.value)
    assert "EVENTLY_JWT_SECRET" in msg
    assert "EVENTLY_PAYMENT_WEBHOOK_SECRET" in msg
    assert "simulated" in msg


def test_production_refuses_simulated_payments_even_with_real_secrets() -> None:
    with pytest.raises(ValidationError, match="simulated"):
        Settings(
            env="production",
            jwt_secret="x" * 40,
            payment_webhook_secret="whsec_live",
            _env_file=None,  # type: ignore[call-arg]
        )


def test_cli_runs_from_any_directory(tmp_path: Path, settings: Settings) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTLY_")}
    env["EVENTLY_DATABASE_URL"] = settings.database_url or ""
    evently = Path(sys.executable).parent / "evently"
    out = subprocess.run(
        [str(evently), "migrate"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "head" in out.stderr
    help_out = subprocess.run(
        [str(evently), "--help"], cwd=tmp_path, capture_output=True, text=True
    )
    for command in ("dev", "api", "worker", "migrate", "users"):
        assert command in help_out.stdout


async def test_schema_constraints_make_bad_inventory_impossible(resources: Resources) -> None:
    async with resources.engine.connect() as conn:
        venue = await conn.scalar(
            text(
                "INSERT INTO venues (id, name, address, city, capacity) VALUES "
                "(gen_random_uuid(), 'v', 'a', 'c', 10) RETURNING id"
            )
        )
        await conn.commit()
        insert = text(
            "INSERT INTO events (id, venue_id, name, event_type, starts_at, ends_at, capacity,"
            " available, held, sold, price, currency) VALUES (gen_random_uuid(), :v, 'e', 'gig',"
            " now(), now() + interval '1 hour', 10, :available, :held, 0, 10, 'EUR')"
        )
        for available, held in ((-1, 11), (5, 0), (11, -1)):
            with pytest.raises(IntegrityError):
                await conn.execute(insert, {"v": venue, "available": available, "held": held})
            await conn.rollback()


async def test_ready_is_200_degraded_when_redis_is_down(
    settings: Settings, state_dir: Path, app_factory: AppFactory
) -> None:
    """Redis only accelerates: the API serves without it, so readiness says degraded, not 503
    (more readiness cases: tests/api/health/test_ready.py)."""
    broken = settings.model_copy(update={"redis_url": f"unix://{state_dir}/no-such-redis.sock"})
    async with open_resources(broken) as res:
        app = app_factory(res, broken)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as client:
            r = await client.get("/health/ready")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "degraded"
    assert "redis" in body["degraded"]
    assert body["checks"]["redis"] != "ok"
    assert body["rate_limits"] == "degraded: per-process"  # login limits count per process


def test_docker_compose_wires_every_service() -> None:
    """The app's URLs point at the compose services (start order and exposure:
    tests/deploy/test_compose.py)."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in ("postgres", "redis", "elasticsearch", "temporal", "temporal-ui", "migrate", "api"):
        assert name in services, name
    workers = [n for n in services if n.startswith("worker")]
    assert workers, "at least one worker service"
    for app_service in ("api", "migrate", *workers):
        env = services[app_service]["environment"]
        assert env["EVENTLY_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert "@postgres:" in env["EVENTLY_DATABASE_URL"]
        assert env["EVENTLY_REDIS_URL"].startswith("redis://")
        assert "@redis:" in env["EVENTLY_REDIS_URL"]  # with the Redis password
        assert env["EVENTLY_TEMPORAL_ADDRESS"].startswith("temporal:")
        assert env["EVENTLY_ELASTICSEARCH_URL"].startswith("http://elasticsearch:")
    for app_service in ("api", *workers):
        deps = services[app_service]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["temporal"]["condition"] == "service_healthy"
    # Temporal's schema is set up in Postgres before the server starts
    assert services["temporal-schema"]["depends_on"] == {
        "temporal-db-role": {"condition": "service_completed_successfully"}
    }
    for name in ("postgres", "redis", "elasticsearch", "temporal", "api"):
        assert "healthcheck" in services[name], name
    # every server URL a setting names has a service behind it
    names = {"EVENTLY_DATABASE_URL", "EVENTLY_REDIS_URL", "EVENTLY_TEMPORAL_ADDRESS"}
    assert names <= set(services["api"]["environment"])
