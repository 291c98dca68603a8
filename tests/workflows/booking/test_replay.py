"""Histories recorded with earlier code keep replaying: a change to BookingWorkflow must not
change the commands of a path that running bookings may be on.

histories/*.json were recorded at 782a7c3 (before the 3-D Secure branch of the pay update) by
``python -m tests.workflows.booking.histories.record`` against that code: expiry, decline then
pay, pay then cancel (refund), cancel while held (waitlist hand-over), sold out, a webhook while
held, and late payments (confirmed, refunded; their second runs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.booking.workflow import BookingWorkflow

pytestmark = pytest.mark.unit

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_every_recorded_path_is_there() -> None:
    assert len(HISTORIES) == 10


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_a_recorded_history_replays_with_the_current_code(path: Path) -> None:
    history = WorkflowHistory.from_json(f"booking-{path.stem}", path.read_text())
    replayer = Replayer(workflows=[BookingWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
