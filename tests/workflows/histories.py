"""Recorded histories of every path of every workflow (tests/workflows/histories/*.json),
replayed in CI by tests/workflows/test_replay.py.

The scenario tests call :func:`record` at the end of each path; it writes the run's history
only when ``EVENTLY_RECORD_HISTORIES=1`` is set, and never over an existing file (record a
new path: ``EVENTLY_RECORD_HISTORIES=1 pytest tests/workflows tests/api``). A path whose
commands change gets a new name (``-v2``): the old history is the point, it must keep
replaying (docs/architecture.md, "Changing a workflow safely").
"""

from __future__ import annotations

import os
from pathlib import Path

from temporalio.client import Client

HISTORIES = Path(__file__).parent / "histories"


def recording() -> bool:
    return os.environ.get("EVENTLY_RECORD_HISTORIES") == "1"


async def record(client: Client, workflow_id: str, name: str, *, run_id: str | None = None) -> None:
    """Save the history of ``workflow_id`` (its latest run, or ``run_id``) as ``name``.json."""
    if not recording():
        return
    path = HISTORIES / f"{name}.json"
    if path.exists():
        return
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    HISTORIES.mkdir(exist_ok=True)
    path.write_text(history.to_json())
