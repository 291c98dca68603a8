"""The start-up check that the deployment's pools fit Postgres's max_connections
(EVENTLY_POSTGRES_MAX_CONNECTIONS): refused with a message that names every term."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from evently.settings import Settings


def budget(**values: object) -> Settings:
    return Settings.model_validate(values)


def test_no_declared_limit_means_no_check() -> None:
    s = budget(api_processes=50, worker_processes=50, database_pool_size=100)
    assert s.postgres_max_connections is None
    assert s.database_connections_at_most == 100 * 120 + 10


def test_a_configuration_that_fits_starts() -> None:
    # compose's numbers: 2 API + 5 worker processes x (8 + 4) + 40 reserved = 124 <= 200
    s = budget(
        postgres_max_connections=200,
        postgres_reserved_connections=40,
        api_processes=2,
        worker_processes=5,
        database_pool_size=8,
        database_max_overflow=4,
    )
    assert s.database_connections_at_most == 124
    # exactly at the limit is allowed
    assert budget(
        postgres_max_connections=124,
        postgres_reserved_connections=40,
        api_processes=2,
        worker_processes=5,
        database_pool_size=8,
        database_max_overflow=4,
    )


def test_the_defaults_against_postgres_default_100_are_refused() -> None:
    """The issue's case: pools of 20 + 20 on 7 processes can reach 280 against 100."""
    with pytest.raises(ValidationError) as caught:
        budget(postgres_max_connections=100, api_processes=2, worker_processes=5)
    message = str(caught.value)
    assert "connection budget exceeded" in message
    assert "(2 API + 5 worker processes) x 40" in message
    assert "= 290 > EVENTLY_POSTGRES_MAX_CONNECTIONS=100" in message


def test_one_connection_over_is_refused() -> None:
    with pytest.raises(ValidationError, match="connection budget exceeded"):
        budget(
            postgres_max_connections=123,
            postgres_reserved_connections=40,
            api_processes=2,
            worker_processes=5,
            database_pool_size=8,
            database_max_overflow=4,
        )


def test_the_check_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTLY_POSTGRES_MAX_CONNECTIONS", "50")
    monkeypatch.setenv("EVENTLY_WORKER_PROCESSES", "3")
    with pytest.raises(ValidationError, match="connection budget exceeded"):
        Settings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.setenv("EVENTLY_DATABASE_POOL_SIZE", "5")
    monkeypatch.setenv("EVENTLY_DATABASE_MAX_OVERFLOW", "3")
    assert Settings(_env_file=None).database_connections_at_most == 4 * 8 + 10  # type: ignore[call-arg]
