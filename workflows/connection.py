"""The Temporal connection every workflow client uses: the pydantic data converter, lazily
connected so a process starts (and reports not-ready) while Temporal is still down.

With the workflow clients (``workflows/<process>/client.py``) and the worker, the only code
that imports ``temporalio.client``."""

from __future__ import annotations

from temporalio.client import Client, Interceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime

TemporalClient = Client  # the type API dependencies and activity classes are given


async def connect(
    address: str,
    namespace: str,
    *,
    lazy: bool = False,
    runtime: Runtime | None = None,
    interceptors: list[Interceptor] | None = None,
) -> Client:
    return await Client.connect(
        address,
        namespace=namespace,
        data_converter=pydantic_data_converter,
        lazy=lazy,
        runtime=runtime,
        interceptors=interceptors or [],
    )


async def ping(client: Client) -> None:
    """Is the Temporal frontend answering? (readiness)"""
    from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

    await client.workflow_service.get_system_info(GetSystemInfoRequest())
