"""The mail pipeline's test stack: a real SMTP server (aiosmtpd, one .eml per Message-ID), a
mail worker built by the production function on a private task queue, and its dispatcher."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text
from temporalio.client import Client

from evently.infra.resources import Resources
from evently.mail.devserver import DevMailServer
from workers.main import build_workers
from workflows import common
from workflows.mail.contract import OutboxInput

# fast backoff so an outage test takes seconds, not minutes
FAST = OutboxInput(
    wait_seconds=5, retry_initial_seconds=0.2, retry_max_interval_seconds=1.0, max_in_flight=20
)


@dataclass
class MailStack:
    server: DevMailServer
    res: Resources  # the session's resources with EVENTLY_SMTP_URL pointing at `server`
    workflow_id: str

    def domain(self) -> str:
        return self.res.settings.mail_from.rsplit("@", 1)[1].rstrip(">")

    def deliveries(self, notification_id: uuid.UUID | str) -> int:
        return self.server.handler.deliveries[f"{notification_id}@{self.domain()}"]

    def eml(self, notification_id: uuid.UUID | str) -> Path:
        return self.server.directory / f"{notification_id}@{self.domain()}.eml"


async def quiet_outbox(res: Resources) -> None:
    """Notices of earlier tests (no mail worker ran for them) are not this test's business."""
    async with res.engine.begin() as conn:
        await conn.execute(
            text("UPDATE notifications SET mail_status = 'skipped' WHERE mail_status = 'pending'")
        )


@contextlib.asynccontextmanager
async def mail_workers(
    client: Client, res: Resources, task_queue: str, *, also: tuple[str, ...] = ()
) -> AsyncIterator[None]:
    """The mail worker on ``task_queue`` (and the workers of the queues in ``also``, on their
    own names)."""
    built = build_workers(
        client,
        res,
        [common.MAIL, *also],
        res.settings,
        strict_sandbox=True,
        task_queues={common.MAIL: task_queue},
    )
    async with contextlib.AsyncExitStack() as stack:
        for w in built:
            await stack.enter_async_context(w)
        yield


@contextlib.asynccontextmanager
async def running_mail(
    client: Client, resources: Resources, directory: Path, task_queue: str
) -> AsyncIterator[MailStack]:
    """A real SMTP server and the mail outbox workflow on a private task queue: every notice
    written from now on is mailed to ``directory`` (one .eml per Message-ID)."""
    from workflows.mail.client import ensure_outbox, stop_outbox

    server = DevMailServer(directory)
    server.start()
    settings = resources.settings.model_copy(update={"smtp_url": server.url})
    res = dataclasses.replace(resources, settings=settings)
    await quiet_outbox(res)
    workflow_id = f"mail-outbox-{uuid.uuid4()}"
    try:
        async with mail_workers(client, res, task_queue):
            await ensure_outbox(client, FAST, workflow_id=workflow_id, task_queue=task_queue)
            try:
                yield MailStack(server, res, workflow_id)
            finally:
                await stop_outbox(client, workflow_id)
    finally:
        server.stop()


async def confirmation_notice(res: Resources, booking_id: uuid.UUID | str) -> Any:
    """The booking's ``booking_confirmed`` notice (``id``, ``mail_status``), None before it."""
    async with res.engine.connect() as conn:
        return (
            await conn.execute(
                text(
                    "SELECT id, mail_status FROM notifications WHERE booking_id = :b "
                    "AND kind = 'booking_confirmed'"
                ),
                {"b": booking_id},
            )
        ).one_or_none()
