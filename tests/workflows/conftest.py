"""Workflow tests: the time-skipping test server, and workers built by the function production
uses (workers/main.py: build_workers) with the strict sandbox, on the real Postgres and Redis.
Stand-in activities replace real ones by name."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from evently.infra.resources import Resources
from evently.settings import Settings
from workers.main import build_workers
from workflows import common


@dataclass
class TimeSkipping:
    """The real resources (settings possibly adjusted) and the time-skipping server."""

    res: Resources
    env: WorkflowEnvironment

    @property
    def client(self) -> Client:
        return self.env.client

    def with_settings(self, **changes: Any) -> TimeSkipping:
        return dataclasses.replace(
            self,
            res=dataclasses.replace(
                self.res, settings=self.res.settings.model_copy(update=changes)
            ),
        )


@contextlib.asynccontextmanager
async def workers(
    ts: TimeSkipping,
    *,
    replace: Mapping[str, Callable[..., Any]] | None = None,
    queues: tuple[str, ...] = tuple(common.QUEUES.values()),
) -> AsyncIterator[None]:
    built = build_workers(
        ts.client, ts.res, list(queues), ts.res.settings, replace=replace, strict_sandbox=True
    )
    async with contextlib.AsyncExitStack() as stack:
        for w in built:
            await stack.enter_async_context(w)
        yield


@pytest.fixture
def time_skipping(time_skipping_env: WorkflowEnvironment, resources: Resources) -> TimeSkipping:
    return TimeSkipping(resources, time_skipping_env)


@contextlib.asynccontextmanager
async def workers_without_resources(
    client: Client, settings: Settings, stand_ins: Mapping[str, Callable[..., Any]]
) -> AsyncIterator[None]:
    """The unit layer: every activity a stand-in, so no Postgres, Redis or search is needed."""
    built = build_workers(
        client, None, list(common.QUEUES.values()), settings, replace=stand_ins, strict_sandbox=True
    )
    async with contextlib.AsyncExitStack() as stack:
        for w in built:
            await stack.enter_async_context(w)
        yield
