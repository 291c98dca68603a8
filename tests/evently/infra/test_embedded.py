"""The embedded Temporal dev server's runtime settings, read from the running process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from evently.infra.embedded import (
    TEMPORAL_GOGC,
    EmbeddedTemporal,
    free_port,
    temporal_gomaxprocs,
)


def environment_of(pid: int) -> dict[str, str]:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(p.decode().split("=", 1) for p in pairs if b"=" in p)


@pytest.mark.parametrize(("cores", "expected"), [(1, "1"), (2, "1"), (4, "2")])
def test_half_the_usable_cores_for_the_go_runtime_and_at_least_one(
    cores: int, expected: str
) -> None:
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < cores:
        pytest.skip(f"this machine lets the tests use {len(usable)} cores")
    try:
        os.sched_setaffinity(0, usable[:cores])
        assert temporal_gomaxprocs() == expected
    finally:
        os.sched_setaffinity(0, usable)


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ({}, {"GOGC": TEMPORAL_GOGC, "GOMAXPROCS": temporal_gomaxprocs()}),
        ({"GOGC": "150", "GOMAXPROCS": "3"}, {"GOGC": "150", "GOMAXPROCS": "3"}),
    ],
)
def test_the_dev_server_runs_with_the_tuned_go_runtime_unless_told_otherwise(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    preset: dict[str, str],
    expected: dict[str, str],
) -> None:
    for name in ("GOGC", "GOMAXPROCS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in preset.items():
        monkeypatch.setenv(name, value)
    server = EmbeddedTemporal(tmp_path, port=free_port(), ui_port=None, persist=False)
    server.start()
    try:
        assert server.pid is not None
        env = environment_of(server.pid)
        assert {name: env.get(name) for name in expected} == expected
    finally:
        server.stop()
