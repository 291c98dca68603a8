"""AdmissionWorkflow's contract: its input and the one local activity it runs each tick.
Light module: the workflow, its client and the activity import it."""

from __future__ import annotations

import uuid

from pydantic import BaseModel

# the registered type name predates the class name (recorded histories, running workflows)
WORKFLOW_NAME = "QueueAdmissionWorkflow"
ADMISSION_TICK = "queue_admission_tick"  # local activity, booking task queue


def admission_workflow_id(event_id: uuid.UUID | str) -> str:
    return f"queue-admission-{event_id}"


class Progress(BaseModel):
    """What one tick learned and decided, carried to the next tick (and across
    continue-as-new): the adapted rate and the signal counters already accounted for."""

    rate: float = 0.0  # admissions per second (0: not measured yet, start at the setting)
    shed_seen: int = 0
    done_seen: int = 0  # admitted buyers' reserves answered, as of the last tick
    slow_seen: int = 0  # ... of which slow
    # (unix seconds, admitted through) of recent ticks, to know which admissions expired
    recent: list[tuple[float, int]] = []
    idle_ticks: int = 0


class AdmissionInput(BaseModel):
    event_id: uuid.UUID
    tick_seconds: float = 1.0
    progress: Progress = Progress()
    # continue as new after this many ticks (tests use a small one)
    max_ticks: int = 300


class TickInput(BaseModel):
    event_id: uuid.UUID
    tick_seconds: float
    progress: Progress


class TickResult(BaseModel):
    progress: Progress
    admitted_through: int = 0
    waiting: int = 0
    done: bool = False  # the on-sale ended, the queue was turned off, or nobody came for a while
