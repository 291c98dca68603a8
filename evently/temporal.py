"""Temporal client construction: the pydantic data converter everywhere."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime


async def connect(
    address: str, namespace: str, *, lazy: bool = False, runtime: Runtime | None = None
) -> Client:
    return await Client.connect(
        address,
        namespace=namespace,
        data_converter=pydantic_data_converter,
        lazy=lazy,
        runtime=runtime,
    )
