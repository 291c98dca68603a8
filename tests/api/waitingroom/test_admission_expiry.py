"""Admission tokens expire (issue 35): a genuine token for this event and buyer, past its
expiry, is refused (403 ``admission_invalid``, nothing held); the same token still live holds."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import text

from evently import waitingroom
from evently.infra.resources import Resources
from tests.factories import make_account, make_event

pytestmark = pytest.mark.usefixtures("running_workers")
API = "/api/v1"


async def test_an_expired_admission_token_is_refused_and_a_live_one_holds(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    admin = await make_account(resources, "admin")
    buyer = await make_account(resources)
    event = await make_event(resources, capacity=3)
    r = await client.patch(
        f"{API}/admin/events/{event.id}", json={"queue": "on"}, headers=admin.headers
    )
    assert r.status_code == 200, r.text
    secret = resources.settings.jwt_secret
    now = int(time.time())
    reserve = {"event_id": str(event.id), "quantity": 1}

    for expired_at in (now - 1, now - 3600):
        token = waitingroom.admission_token(secret, event.id, buyer.id, 1, expired_at)
        r = await client.post(
            f"{API}/bookings/reserve",
            json=reserve,
            headers={**buyer.headers, "Admission-Token": token},
        )
        assert r.status_code == 403, r.text
        assert r.json()["code"] == "admission_invalid"
    async with resources.engine.connect() as conn:
        n = await conn.scalar(
            text("SELECT count(*) FROM bookings WHERE event_id = :e"), {"e": event.id}
        )
    assert n == 0

    live = waitingroom.admission_token(secret, event.id, buyer.id, 1, now + 60)
    r = await client.post(
        f"{API}/bookings/reserve", json=reserve, headers={**buyer.headers, "Admission-Token": live}
    )
    assert r.status_code == 201, r.text
