"""Schemathesis against /openapi.json of a real API process (uvicorn, on the session servers)
with an admin bearer token: no 500, and every error answer is problem+json. Bounded: a few
examples per operation (a few hundred requests in all)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from evently.embedded import free_port
from evently.resources import Resources
from evently.settings import Settings
from tests.factories import make_account

pytestmark = pytest.mark.reliability

EXAMPLES_PER_OPERATION = 6


@pytest.fixture(scope="module")
def api_process(settings: Settings) -> Iterator[str]:
    """`evently api` as a subprocess on the session's servers (read-mostly: nothing killed)."""
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "EVENTLY_DATABASE_URL": settings.database_url or "",
            "EVENTLY_REDIS_URL": settings.redis_url or "",
            "EVENTLY_TEMPORAL_ADDRESS": settings.temporal_address or "",
            "EVENTLY_JWT_SECRET": settings.jwt_secret,
            "EVENTLY_LOG_FORMAT": "json",
            "EVENTLY_LOG_LEVEL": "WARNING",
            "EVENTLY_STATE_DIR": str(settings.state_path),
        }
    )
    log = Path(tempfile.mkdtemp(prefix="evently-fuzz-")) / "api.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "evently.cli.main", "api", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="module")
async def admin_headers(resources: Resources) -> dict[str, str]:
    return (await make_account(resources, "admin")).headers


def test_openapi_fuzz_no_500_and_problem_json(
    api_process: str, admin_headers: dict[str, str]
) -> None:
    schema = schemathesis.openapi.from_url(f"{api_process}/openapi.json")
    failures: list[str] = []
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
        )
        @given(case=operation.as_strategy())
        def exercise(case: schemathesis.Case) -> None:
            nonlocal calls
            calls += 1
            r = case.call(base_url=api_process, headers=admin_headers, timeout=15)
            raw = r.headers.get("content-type") or r.headers.get("Content-Type") or ""
            ctype = raw[0] if isinstance(raw, list) else raw
            if r.status_code >= 500 or (
                r.status_code >= 400 and not ctype.startswith("application/problem+json")
            ):
                failures.append(
                    f"{case.method} {case.formatted_path} -> {r.status_code} {ctype}: "
                    f"{r.text[:300]}"
                )

        exercise()
    assert calls >= 50  # the schema really was exercised
    assert not failures, "\n".join(failures[:20])
