"""Periodic jobs run by Temporal Schedules (issue 33): names and payloads."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

WORKFLOW_NAME = "Maintenance"
ACTIVITY_PRUNE_TOKENS = "maintenance.prune_tokens"
ACTIVITY_CHECK = "maintenance.check_invariants"
ACTIVITY_REMINDERS = "maintenance.queue_reminders"
ACTIVITY_RETENTION = "maintenance.retention"

Task = Literal["prune_tokens", "check_invariants", "queue_reminders", "retention"]


class MaintenanceInput(BaseModel):
    task: Task


class MaintenanceResult(BaseModel):
    task: Task
    count: int  # tokens deleted, violations found, reminders queued, rows pruned
