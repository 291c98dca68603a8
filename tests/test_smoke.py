"""End to end: the real `evently api` process against the real stack."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from evently.infra.embedded import free_port, port_open
from evently.settings import Settings


@pytest.fixture(scope="module")
def api_process(settings: Settings):  # type: ignore[no-untyped-def]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTLY_")}
    env.update(
        {
            "EVENTLY_ENV": "test",
            "EVENTLY_STATE_DIR": str(settings.state_path),
            "EVENTLY_DATABASE_URL": settings.database_url or "",
            "EVENTLY_REDIS_URL": settings.redis_url or "",
            "EVENTLY_TEMPORAL_ADDRESS": settings.temporal_address or "",
            "EVENTLY_API_PORT": str(port),
        }
    )
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "api"], env=env)
    deadline = time.monotonic() + 60
    while not port_open("127.0.0.1", port):
        assert proc.poll() is None, "the API process exited"
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(15)


def test_api_process_is_ready_against_the_real_stack(api_process: str) -> None:
    r = httpx.get(f"{api_process}/health/ready", timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["checks"] == {
        "postgres": "ok",
        "redis": "ok",
        "temporal": "ok",
        "search": "ok",
    }
    assert httpx.get(f"{api_process}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{api_process}/docs").status_code == 200


def test_temporal_ui_answers(settings: Settings) -> None:
    assert settings.temporal_ui_url
    r = httpx.get(settings.temporal_ui_url, timeout=10)
    assert r.status_code == 200
    assert "<html" in r.text.lower()


async def test_unknown_route_is_problem_json(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/does-not-exist")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == 404
    assert body["code"] == "not_found"
