"""Workflow tests: the time-skipping test server, and workers built by the function production
uses (workers/main.py: build_workers) with the strict sandbox, on the real Postgres and Redis.
Stand-in activities replace real ones by name."""

from __future__ import annotations

import pytest
from temporalio.testing import WorkflowEnvironment

from evently.infra.resources import Resources
from tests.support.temporal import TimeSkipping


@pytest.fixture
def time_skipping(time_skipping_env: WorkflowEnvironment, resources: Resources) -> TimeSkipping:
    return TimeSkipping(resources, time_skipping_env)
