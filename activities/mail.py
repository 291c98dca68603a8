"""Buyer email from the outbox (evently/mail/outbox.py), on the mail task queue.

``next_due_mail`` finds pending notices or waits for one (LISTEN on ``evently_outbox``, which
the notifications trigger NOTIFYs at commit). ``deliver_mail`` sends one notice: claim (lease)
→ compose from the rows → render (PDF and .ics for a confirmation, off the event loop) → SMTP
→ ``sent``. An unreachable or busy server (``MailServerUnavailable``) gives the lease back and
raises, so Temporal retries with backoff; a permanent refusal (5xx) is recorded as ``failed``
and not retried. Idempotent by the notification id: a notice already sent is not sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from asyncio import FIRST_COMPLETED
from collections.abc import Awaitable, Callable

from temporalio import activity
from temporalio.exceptions import ApplicationError

from evently.enums import MailStatus
from evently.infra import metrics
from evently.infra.resources import Resources
from evently.mail import outbox
from evently.mail.render import build_message
from evently.mail.smtp import MailRejected, MailServerUnavailable, send
from workflows.connection import TemporalClient
from workflows.mail.contract import (
    DELIVER_MAIL,
    MAIL_LEASED,
    MAIL_NOT_CONFIGURED,
    MAIL_NOT_READY,
    MAIL_SERVER_UNAVAILABLE,
    NEXT_DUE_MAIL,
    DeliverInput,
    DeliverResult,
    DueBatch,
    DueInput,
)

log = logging.getLogger("evently.activities.mail")

#: one delivery attempt holds its notice this long (longer than the activity's 90 s
#: start-to-close): a crashed attempt's notice is free again after it
LEASE_SECONDS = 120.0
#: after a wake-up, let a burst of commits land before looking
SETTLE_SECONDS = 0.05
#: the long wait for mail heartbeats this often (the workflow's heartbeat timeout is 4x)
HEARTBEAT_SECONDS = 5.0


class MailActivities:
    def __init__(self, res: Resources, temporal: TemporalClient) -> None:
        self.res = res
        self._autocommit = res.engine.execution_options(isolation_level="AUTOCOMMIT")

    @property
    def smtp_url(self) -> str | None:
        return self.res.settings.smtp_url or self.res.endpoints.smtp_url

    @activity.defn(name=NEXT_DUE_MAIL)
    async def next_due_mail(self, data: DueInput) -> DueBatch:
        """Pending notices, or after a wait for one: a NOTIFY, the worker shutting down, or
        ``wait_seconds``. LISTEN starts before the first look, so no commit is missed."""
        async with self._autocommit.connect() as conn:
            raw = await conn.get_raw_connection()
            listener = raw.driver_connection
            assert listener is not None
            woken = asyncio.Event()

            def on_notify(*_: object) -> None:
                woken.set()

            await listener.add_listener(outbox.CHANNEL, on_notify)
            try:
                ids = await outbox.due(conn, exclude=data.exclude, limit=data.limit)
                if not ids:
                    await self._wait(woken, data.wait_seconds)
                    if woken.is_set():
                        await asyncio.sleep(SETTLE_SECONDS)
                    ids = await outbox.due(conn, exclude=data.exclude, limit=data.limit)
            finally:
                with contextlib.suppress(Exception):
                    await listener.remove_listener(outbox.CHANNEL, on_notify)
        return DueBatch(notification_ids=ids)

    @staticmethod
    async def _wait(woken: asyncio.Event, seconds: float) -> None:
        """Until a NOTIFY, the worker shutting down, or ``seconds``; heartbeating, so a worker
        that dies mid-wait is noticed within the heartbeat timeout, not the whole wait."""
        waits = [
            asyncio.ensure_future(woken.wait()),
            asyncio.ensure_future(activity.wait_for_worker_shutdown()),
        ]
        deadline = asyncio.get_running_loop().time() + seconds
        try:
            while (left := deadline - asyncio.get_running_loop().time()) > 0:
                done, _ = await asyncio.wait(
                    waits, timeout=min(left, HEARTBEAT_SECONDS), return_when=FIRST_COMPLETED
                )
                if done:
                    return
                activity.heartbeat()
        finally:
            for w in waits:
                w.cancel()

    @activity.defn(name=DELIVER_MAIL)
    async def deliver_mail(self, data: DeliverInput) -> DeliverResult:
        nid = data.notification_id
        settings = self.res.settings
        async with self._autocommit.connect() as conn:
            notice = await outbox.claim(conn, nid, lease_seconds=LEASE_SECONDS)
            if notice is None:
                found = await outbox.status(conn, nid)
                if found is None or found != MailStatus.PENDING:
                    return DeliverResult(notification_id=nid, status=found or MailStatus.SKIPPED)
                # another attempt holds the lease (or crashed holding it): retry after backoff
                raise ApplicationError(f"notification {nid} is being delivered", type=MAIL_LEASED)
            try:
                composed = await outbox.compose(conn, notice, settings)
            except Exception as exc:
                await outbox.release(conn, nid, f"compose: {exc!r}")
                raise
            if isinstance(composed, outbox.Later):
                await outbox.release(conn, nid, composed.reason)
                raise ApplicationError(composed.reason, type=MAIL_NOT_READY)
            if isinstance(composed, outbox.Skip):
                await outbox.finish(conn, nid, MailStatus.SKIPPED, composed.reason)
                metrics.MAILS.labels(outcome="skipped").inc()
                return DeliverResult(
                    notification_id=nid, status=MailStatus.SKIPPED, attempts=notice.attempts
                )
            smtp_url = self.smtp_url
            if smtp_url is None:
                await outbox.release(conn, nid, "EVENTLY_SMTP_URL is not set")
                raise ApplicationError("EVENTLY_SMTP_URL is not set", type=MAIL_NOT_CONFIGURED)

        # rendering (the tickets PDF) is CPU work; the Date is the notice's, so a retried send
        # carries the very same headers
        message = await asyncio.to_thread(
            build_message,
            composed.mail,
            notification_id=nid,
            to=composed.to,
            sender=settings.mail_from,
            date=notice.created_at,
        )
        try:
            await send(message, smtp_url)
        except MailServerUnavailable as exc:
            metrics.MAILS.labels(outcome="retry").inc()
            await self._with_retries(outbox.release, nid, str(exc))
            raise ApplicationError(str(exc), type=MAIL_SERVER_UNAVAILABLE) from exc
        except MailRejected as exc:
            metrics.MAILS.labels(outcome="failed").inc()
            log.warning("mail for notification %s refused: %s", nid, exc)
            await self._with_retries(outbox.finish, nid, MailStatus.FAILED, str(exc))
            return DeliverResult(
                notification_id=nid, status=MailStatus.FAILED, attempts=notice.attempts
            )
        metrics.MAILS.labels(outcome="sent").inc()
        # the server has the message: record it even through a short database hiccup, or a
        # retry would send it again (the same Message-ID, but still a second copy)
        await self._with_retries(outbox.finish, nid, MailStatus.SENT)
        return DeliverResult(notification_id=nid, status=MailStatus.SENT, attempts=notice.attempts)

    async def _with_retries(
        self, fn: Callable[..., Awaitable[None]], nid: uuid.UUID, *args: object
    ) -> None:
        delay = 0.2
        for attempt in range(6):
            try:
                async with self._autocommit.connect() as conn:
                    await fn(conn, nid, *args)
                return
            except Exception:
                if attempt == 5:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 3.0)
