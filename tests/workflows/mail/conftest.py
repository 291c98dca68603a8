"""Fixtures of the mail tests (tests/support/mail.py has the rest)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from evently.infra.resources import Resources
from evently.mail.devserver import DevMailServer
from tests.support.mail import FAST, MailStack, mail_workers, quiet_outbox
from workflows.mail.client import ensure_outbox, stop_outbox


@pytest.fixture
def mail_server(tmp_path: Path) -> Iterator[DevMailServer]:
    server = DevMailServer(tmp_path / "mail")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mail_resources(resources: Resources, mail_server: DevMailServer) -> Resources:
    settings = resources.settings.model_copy(update={"smtp_url": mail_server.url})
    return dataclasses.replace(resources, settings=settings)


@pytest.fixture
async def mail_stack(
    temporal_client: Client, mail_resources: Resources, mail_server: DevMailServer, task_queue: str
) -> AsyncIterator[MailStack]:
    await quiet_outbox(mail_resources)
    workflow_id = f"mail-outbox-{uuid.uuid4()}"
    async with mail_workers(temporal_client, mail_resources, task_queue):
        await ensure_outbox(temporal_client, FAST, workflow_id=workflow_id, task_queue=task_queue)
        try:
            yield MailStack(mail_server, mail_resources, workflow_id)
        finally:
            await stop_outbox(temporal_client, workflow_id)
