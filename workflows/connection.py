"""The Temporal connection every workflow client uses: the pydantic data converter, lazily
connected so a process starts (and reports not-ready) while Temporal is still down.

With the workflow clients (``workflows/<process>/client.py``) and the worker, the only code
that imports ``temporalio.client``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio.client import Client, Interceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

TemporalClient = Client  # the type API dependencies and activity classes are given


async def connect(
    address: str,
    namespace: str,
    *,
    lazy: bool = False,
    runtime: Runtime | None = None,
    interceptors: list[Interceptor] | None = None,
    tracer: Tracer | None = None,
) -> Client:
    """``tracer`` (tracing on, evently/infra/tracing.py) adds temporalio's tracing interceptor:
    client calls get spans and carry the trace in their headers, and every worker built on
    this client traces its workflows and activities. Without it nothing is added."""
    chain = list(interceptors or [])
    if tracer is not None:
        from temporalio.contrib.opentelemetry import TracingInterceptor

        chain.insert(0, TracingInterceptor(tracer))  # outermost: the others run in its span
    return await Client.connect(
        address,
        namespace=namespace,
        data_converter=pydantic_data_converter,
        lazy=lazy,
        runtime=runtime,
        interceptors=chain,
    )


async def ping(client: Client) -> None:
    """Is the Temporal frontend answering? (readiness)"""
    from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

    await client.workflow_service.get_system_info(GetSystemInfoRequest())
