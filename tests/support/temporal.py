"""Temporal helpers: a fresh namespace on the dev server, the app on other resources, and the
time-skipping server with the production workers."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from evently.infra.resources import Resources
from evently.settings import Settings
from workers.main import build_workers
from workflows import common
from workflows.common import SEARCH_ATTRIBUTE_TYPES

AppFactory = Callable[..., FastAPI]


async def register_namespace(temporal_client: Client, prefix: str = "test") -> str:
    """A fresh namespace on the dev server (its search attributes registered): workers of a
    test there share no task queue with the session's workers."""
    ns = f"{prefix}-{uuid.uuid4().hex[:10]}"
    await _again(
        lambda: temporal_client.workflow_service.register_namespace(
            RegisterNamespaceRequest(
                namespace=ns, workflow_execution_retention_period=Duration(seconds=86400)
            )
        )
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            await temporal_client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=ns)
            )
            break
        except RPCError:
            assert time.monotonic() < deadline, "namespace never appeared"
            await asyncio.sleep(0.2)
    await _again(
        lambda: temporal_client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=ns,
                search_attributes={
                    name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
                    for name in SEARCH_ATTRIBUTE_TYPES
                },
            )
        )
    )
    return ns


async def _again(call: Callable[[], Awaitable[object]]) -> None:
    """``call`` again when the dev server gave up on it (it answered "operation was canceled"
    to a register_namespace under a loaded CI machine once); a second answer that the thing
    already exists means the first one went through."""
    for attempt in range(5):
        try:
            await call()
            return
        except RPCError as e:
            if attempt and e.status == RPCStatusCode.ALREADY_EXISTS:
                return
            if attempt == 4 or e.status not in (
                RPCStatusCode.CANCELLED,
                RPCStatusCode.UNAVAILABLE,
                RPCStatusCode.DEADLINE_EXCEEDED,
            ):
                raise
            await asyncio.sleep(0.5 * (attempt + 1))


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
