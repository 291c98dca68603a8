"""The embedded Temporal dev server's runtime settings, read from the running process."""

from __future__ import annotations

from pathlib import Path

import pytest

from evently.infra.embedded import TEMPORAL_GOGC, EmbeddedTemporal, free_port


def gogc_of(server: EmbeddedTemporal) -> str | None:
    assert server.pid is not None
    environ = Path(f"/proc/{server.pid}/environ").read_bytes().split(b"\0")
    found = [v.split(b"=", 1)[1].decode() for v in environ if v.startswith(b"GOGC=")]
    return found[0] if found else None


@pytest.mark.parametrize(("preset", "expected"), [(None, TEMPORAL_GOGC), ("150", "150")])
def test_the_dev_server_runs_with_a_lighter_garbage_collector_unless_told_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, preset: str | None, expected: str
) -> None:
    if preset is None:
        monkeypatch.delenv("GOGC", raising=False)
    else:
        monkeypatch.setenv("GOGC", preset)
    server = EmbeddedTemporal(tmp_path, port=free_port(), ui_port=None, persist=False)
    server.start()
    try:
        assert gogc_of(server) == expected
    finally:
        server.stop()
