"""Worker Versioning (issue 33) on the dev server: a worker started with
EVENTLY_WORKER_DEPLOYMENT_NAME / EVENTLY_WORKER_BUILD_ID registers that deployment version;
made current (what `temporal worker deployment set-current-version` does), it takes new
workflows, pinned to it. Off by default; the workflows declare no behaviour of their own (the
server refuses one from an unversioned worker)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from temporalio import workflow as temporal_workflow
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    SetWorkerDeploymentCurrentVersionRequest,
)
from temporalio.client import Client
from temporalio.common import VersioningBehavior
from temporalio.service import RPCError

from evently.infra.resources import Resources
from evently.settings import Settings
from tests.support.temporal import register_namespace
from workers.main import build_workers, deployment_config
from workflows import common
from workflows.booking.change_workflow import BookingChangeWorkflow
from workflows.booking.workflow import BookingWorkflow
from workflows.connection import connect
from workflows.maintenance.contract import WORKFLOW_NAME, MaintenanceInput, MaintenanceResult
from workflows.maintenance.workflow import MaintenanceWorkflow


def _behavior(cls: type) -> VersioningBehavior:
    definition = temporal_workflow._Definition.from_class(cls)
    assert definition is not None
    return definition.versioning_behavior


def test_versioning_is_off_by_default_and_needs_both_settings() -> None:
    assert deployment_config(Settings(env="test")) is None
    with pytest.raises(ValueError, match="go together"):
        Settings(env="test", worker_deployment_name="evently")
    config = deployment_config(
        Settings(env="test", worker_deployment_name="evently", worker_build_id="b1")
    )
    assert config is not None
    assert (config.version.deployment_name, config.version.build_id) == ("evently", "b1")
    # in-flight bookings finish on the build that started them
    assert config.default_versioning_behavior == VersioningBehavior.PINNED
    for cls in (BookingWorkflow, BookingChangeWorkflow, MaintenanceWorkflow):
        assert _behavior(cls) == VersioningBehavior.UNSPECIFIED


async def test_a_versioned_worker_registers_its_version_and_runs_workflows_when_current(
    temporal_client: Client, settings: Settings, resources: Resources
) -> None:
    namespace = await register_namespace(temporal_client)
    assert settings.temporal_address
    client = await connect(settings.temporal_address, namespace)
    build = f"build-{uuid.uuid4().hex[:8]}"
    versioned = resources.settings.model_copy(
        update={"worker_deployment_name": "evently", "worker_build_id": build}
    )
    workers = build_workers(client, resources, [common.BOOKING], versioned, strict_sandbox=True)
    async with workers[0]:
        # the server learns the version from the worker's polls
        deadline = time.monotonic() + 30
        while True:
            try:
                described = await client.workflow_service.describe_worker_deployment(
                    DescribeWorkerDeploymentRequest(namespace=namespace, deployment_name="evently")
                )
                builds = [
                    s.deployment_version.build_id
                    for s in described.worker_deployment_info.version_summaries
                ]
                if build in builds:
                    break
            except RPCError:
                pass
            assert time.monotonic() < deadline, "the deployment version never appeared"
            await asyncio.sleep(0.3)
        # the rollout step: make it current (temporal worker deployment set-current-version)
        await client.workflow_service.set_worker_deployment_current_version(
            SetWorkerDeploymentCurrentVersionRequest(
                namespace=namespace, deployment_name="evently", build_id=build
            )
        )
        workflow_id = f"maintenance-{uuid.uuid4()}"
        result = await asyncio.wait_for(
            client.execute_workflow(
                WORKFLOW_NAME,
                MaintenanceInput(task="check_invariants"),
                id=workflow_id,
                task_queue=common.BOOKING,
                result_type=MaintenanceResult,
            ),
            30,
        )
        assert result.task == "check_invariants"
        info = (await client.get_workflow_handle(workflow_id).describe()).raw_description
        versioning = info.workflow_execution_info.versioning_info
        assert versioning.deployment_version.build_id == build
        assert versioning.behavior == VersioningBehavior.PINNED.value
