"""The reminder mail a day before an event (issue 33), on the time-skipping server: the
``evently-reminders`` schedule's run, fired twice, mails each ticket once over SMTP (aiosmtpd),
to the right address — the attendee's when given, a transfer's new attendee, else the buyer
(a guest buyer too). The time-skipping server has no Schedules (CreateSchedule is
unimplemented there): the test starts the schedule's action as the schedule does; that the
schedule exists once is tests/workflows/maintenance/test_schedules.py's."""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta
from decimal import Decimal
from email import policy
from email.parser import BytesParser
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from evently.infra.resources import Resources
from evently.mail.devserver import DevMailServer
from tests.support.factories import make_event, unique_email
from tests.support.mail import FAST, MailStack, mail_workers, quiet_outbox
from tests.support.tickets import confirmed_booking, tickets_of, wait_for
from workflows import common
from workflows.mail.client import ensure_outbox
from workflows.maintenance.client import JOBS
from workflows.maintenance.contract import WORKFLOW_NAME, MaintenanceInput, MaintenanceResult

pytestmark = pytest.mark.usefixtures("running_workers")

REMINDERS = next(j for j in JOBS if j.schedule_id == "evently-reminders")


async def _fire(client: Client) -> int:
    """What the schedule does each hour: start its action (a fresh workflow id per run)."""
    result = await client.execute_workflow(
        WORKFLOW_NAME,
        MaintenanceInput(task=REMINDERS.task),
        id=f"{REMINDERS.schedule_id}-run-{uuid.uuid4()}",
        task_queue=common.BOOKING,
        result_type=MaintenanceResult,
    )
    return result.count


async def _reminders(res: Resources, booking_ids: list[str]) -> list[Any]:
    async with res.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT id, booking_id, payload->>'ticket_id' AS ticket_id, mail_status "
                "FROM notifications WHERE kind = 'event_reminder' "
                "AND booking_id = ANY(CAST(:b AS uuid[]))"
            ),
            {"b": booking_ids},
        )
        return list(rows)


async def test_the_reminder_goes_once_per_ticket_to_its_attendee_or_buyer(
    client: httpx.AsyncClient,
    mail_resources: Resources,
    mail_server: DevMailServer,
    time_skipping_env: WorkflowEnvironment,
    task_queue: str,
) -> None:
    res = mail_resources
    soon = await make_event(res, capacity=20, price=Decimal("10.00"), starts_in=timedelta(hours=12))
    later = await make_event(res, capacity=20, starts_in=timedelta(days=3))
    # an account's booking of three: Ada gave her address, Bob did not, Cy's ticket is
    # transferred to Carol
    bought = await confirmed_booking(client, res, quantity=3, event=soon)
    ada, carol = unique_email("ada"), unique_email("carol")
    r = await client.put(
        f"/api/v1/bookings/{bought.booking_id}/attendees",
        json={
            "attendees": [
                {"name": "Ada Lovelace", "email": ada},
                {"name": "Bob"},
                {"name": "Cy"},
            ]
        },
        headers=bought.buyer.headers,
    )
    assert r.status_code == 200, r.text
    first, second, third = await tickets_of(client, bought)
    r = await client.post(
        f"/api/v1/bookings/{bought.booking_id}/tickets/{third['id']}/transfer",
        json={"name": "Carol Newman", "email": carol},
        headers=bought.buyer.headers,
    )
    assert r.status_code == 200, r.text
    carols = r.json()["ticket_id"]
    # a guest's booking of one
    guest = unique_email("guest")
    r = await client.post(
        "/api/v1/bookings/reserve",
        json={"event_id": str(soon.id), "quantity": 1, "buyer": {"email": guest, "name": "G"}},
    )
    assert r.status_code == 201, r.text
    guest_booking, key = r.json()["booking_id"], r.json()["access_key"]
    r = await client.post(
        "/api/v1/bookings/confirm",
        json={"booking_id": guest_booking, "payment_method": "pm_card_visa"},
        headers={"Evently-Booking-Key": key},
    )
    assert r.status_code == 200, r.text
    guest_ticket = (
        await client.get(f"/api/v1/bookings/{guest_booking}/tickets", params={"key": key})
    ).json()["tickets"][0]["id"]
    # three days away: not yet
    not_yet = await confirmed_booking(client, res, quantity=1, event=later)
    await quiet_outbox(res)  # the confirmations and the transfer mail are not this test's

    expected = {
        first["id"]: ada,
        second["id"]: bought.buyer.user.email,
        carols: carol,
        guest_ticket: guest,
    }
    ts = time_skipping_env.client
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(mail_workers(ts, res, task_queue, also=(common.BOOKING,)))
        # the schedule fires twice before the mail goes out: one notice per ticket
        assert await _fire(ts) >= len(expected)  # other tests' events may be due too
        assert await _fire(ts) == 0
        bookings = [bought.booking_id, guest_booking, not_yet.booking_id]
        notices = await _reminders(res, bookings)
        assert sorted(n.ticket_id for n in notices) == sorted(expected)

        outbox_id = f"mail-outbox-{uuid.uuid4()}"
        await ensure_outbox(ts, FAST, workflow_id=outbox_id, task_queue=task_queue)
        stack.push_async_callback(ts.get_workflow_handle(outbox_id).terminate, "done")

        async def all_sent() -> bool:
            return all(n.mail_status == "sent" for n in await _reminders(res, bookings))

        await wait_for(all_sent, seconds=60)
        # and once more after the mail went out: nothing new
        assert await _fire(ts) == 0

    mail = MailStack(mail_server, res, outbox_id)
    for notice in await _reminders(res, bookings):
        assert mail.deliveries(notice.id) == 1
        msg = BytesParser(policy=policy.default).parsebytes(mail.eml(notice.id).read_bytes())
        assert expected[notice.ticket_id] in str(msg["To"]), (notice.ticket_id, msg["To"])
        assert msg["Subject"] == f"Reminder: {soon.name} is coming up"
        attached = [p.get_filename() for p in msg.iter_attachments()]
        assert attached == [f"tickets-{notice.booking_id}.pdf", "event.ics"]
