"""The compose file's one-shot scripts, run for real against the embedded servers: the
Postgres role for Temporal (psql, as the postgres image runs it) and the namespace + search
attributes (the `temporal` CLI, as admin-tools runs it, against the dev server).
temporal-sql-tool has no wheel, so setup-schema.sh is only checked in test_compose.py."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from evently.infra.embedded import EmbeddedPostgres, EmbeddedTemporal, _bin, free_port

ROOT = Path(__file__).resolve().parents[2]
ROLE_SCRIPT = ROOT / "deploy/postgres/temporal-role.sh"
NAMESPACE_SCRIPT = ROOT / "deploy/temporal/setup-namespace.sh"


def run(script: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(script)], env=os.environ | env, capture_output=True, text=True, timeout=120
    )


# ---- Temporal's Postgres role ------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    pg = EmbeddedPostgres(tmp_path_factory.mktemp("pg-role"))
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()


def psql(pg: EmbeddedPostgres, sql: str) -> str:
    out = subprocess.run(
        [str(pg.bin_dir / "psql"), "-h", str(pg.socket_dir), "-U", "postgres", "-tAc", sql],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_the_temporal_role_is_created_then_kept_in_step(postgres: EmbeddedPostgres) -> None:
    env = {
        "PATH": f"{postgres.bin_dir}:{os.environ['PATH']}",
        "PGHOST": str(postgres.socket_dir),
        "PGUSER": "postgres",
        "PGPASSWORD": "unused-with-trust-auth",
        "PGDATABASE": "postgres",
        "TEMPORAL_DB_USER": "temporal",
        "TEMPORAL_DB_PASSWORD": "first0123456789",
    }
    done = run(ROLE_SCRIPT, env)
    assert done.returncode == 0, done.stderr
    role = "SELECT rolcanlogin, rolcreatedb, rolsuper FROM pg_roles WHERE rolname = 'temporal'"
    assert psql(postgres, role) == "t|t|f"
    first = psql(postgres, "SELECT rolpassword FROM pg_authid WHERE rolname = 'temporal'")
    assert first.startswith("SCRAM-SHA-256$")

    # a second start with a rotated password (quotes and all) updates it in place
    done = run(ROLE_SCRIPT, env | {"TEMPORAL_DB_PASSWORD": "it's-rotated; DROP ROLE x"})
    assert done.returncode == 0, done.stderr
    assert psql(postgres, role) == "t|t|f"
    assert psql(postgres, "SELECT rolpassword FROM pg_authid WHERE rolname = 'temporal'") != first


def test_the_role_script_refuses_to_run_without_a_password() -> None:
    done = run(
        ROLE_SCRIPT, {"PGHOST": "x", "PGUSER": "x", "PGPASSWORD": "x", "TEMPORAL_DB_USER": "t"}
    )
    assert done.returncode != 0
    assert "TEMPORAL_DB_PASSWORD" in done.stderr


# ---- namespace and search attributes -------------------------------------------------------


@pytest.fixture(scope="module")
def temporal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = EmbeddedTemporal(
        tmp_path_factory.mktemp("temporal-setup"), port=free_port(), ui_port=None, persist=False
    )
    server.start()
    try:
        yield f"127.0.0.1:{server.port}"
    finally:
        server.stop()


def cli_env(address: str, namespace: str, **extra: str) -> dict[str, str]:
    cli_dir = str(Path(_bin("temporal")).parent)
    return {
        "PATH": f"{cli_dir}:{os.environ['PATH']}",
        "TEMPORAL_ADDRESS": address,
        "TEMPORAL_NAMESPACE": namespace,
        **extra,
    }


def search_attributes(address: str, namespace: str) -> dict[str, str]:
    listing = subprocess.run(
        [_bin("temporal"), "operator", "search-attribute", "list", "-n", namespace],
        env=os.environ | {"TEMPORAL_ADDRESS": address},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = (line.split() for line in listing.splitlines()[1:])
    return {row[0]: row[1] for row in rows if len(row) == 2}


def test_namespace_and_search_attributes_are_registered_idempotently(temporal: str) -> None:
    env = cli_env(temporal, "evently-setup-test")
    first = run(NAMESPACE_SCRIPT, env)
    assert first.returncode == 0, first.stdout + first.stderr
    attributes = search_attributes(temporal, "evently-setup-test")
    for name in ("EventId", "UserId", "BookingStatus", "OrganizationId"):
        assert attributes[name] == "Keyword"

    again = run(NAMESPACE_SCRIPT, env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "namespace evently-setup-test exists" in again.stdout
    assert "search attribute OrganizationId (Keyword) exists" in again.stdout


def test_an_attribute_registered_with_another_type_fails_the_setup(temporal: str) -> None:
    namespace = "evently-setup-conflict"
    assert run(NAMESPACE_SCRIPT, cli_env(temporal, namespace)).returncode == 0
    clashing = ["--name", "Clash", "--type", "Text"]
    subprocess.run(
        [_bin("temporal"), "operator", "search-attribute", "create", "-n", namespace, *clashing],
        env=os.environ | {"TEMPORAL_ADDRESS": temporal},
        capture_output=True,
        check=True,
    )
    clash = run(NAMESPACE_SCRIPT, cli_env(temporal, namespace, EVENTLY_SEARCH_ATTRIBUTES="Clash"))
    assert clash.returncode != 0
    assert "different type" in clash.stdout + clash.stderr
