"""Live updates end to end over a real server process with two workers (uvicorn, TCP), real
workers, Postgres, Redis and Temporal: a buyer in a queued on-sale sees their position fall,
the sold-out, their admission and a waitlist offer on their stream, and a reconnect with
Last-Event-ID misses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from evently.infra.resources import Resources
from evently.settings import Settings
from tests.support.factories import Account, make_account, make_event
from tests.support.servers import api_process

pytestmark = pytest.mark.usefixtures("running_workers")
API = "/api/v1"
WAIT = 20.0  # seconds for one expected message (a tick is 1 s; shared CI machines stall)


@dataclass
class Sse:
    id: str | None
    event: str
    data: dict[str, Any]


@dataclass
class Stream:
    """One SSE connection read in the background into a queue of messages."""

    messages: asyncio.Queue[Sse] = field(default_factory=asyncio.Queue)
    last_id: str | None = None
    content_type: str = ""

    async def next(self, event: str, where: Any = None) -> Sse:
        """The next message of this type (and matching ``where``), skipping others."""
        async with asyncio.timeout(WAIT):
            while True:
                m = await self.messages.get()
                if m.event == event and (where is None or where(m.data)):
                    return m

    async def each(self, wanted: dict[str, Any]) -> dict[str, Sse]:
        """One message of each wanted type (matching its test, or None for any), in whatever
        order they come: derived ``queue`` state is polled each tick, so it may arrive before
        or after the ``admitted`` message published at the same moment."""
        found: dict[str, Sse] = {}
        async with asyncio.timeout(WAIT):
            while len(found) < len(wanted):
                m = await self.messages.get()
                where = wanted.get(m.event, False)
                if where is not False and m.event not in found and (where is None or where(m.data)):
                    found[m.event] = m
        return found


@pytest.fixture(scope="module")
def api(settings: Settings) -> Iterator[str]:
    with api_process(settings, workers=2) as url:
        yield url


@contextlib.asynccontextmanager
async def listen(
    http: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> AsyncIterator[Stream]:
    stream = Stream()

    async def read() -> None:
        async with http.stream("GET", path, headers=headers, timeout=None) as r:
            assert r.status_code == 200, await r.aread()
            stream.content_type = r.headers["content-type"]
            fields: dict[str, str] = {}
            async for line in r.aiter_lines():
                if line == "":
                    if "event" in fields or "data" in fields:
                        m = Sse(
                            fields.get("id"),
                            fields.get("event", "message"),
                            json.loads(fields.get("data") or "{}"),
                        )
                        if m.id is not None:
                            stream.last_id = m.id
                        stream.messages.put_nowait(m)
                    fields = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(":")
                    fields[name] = value[1:] if value.startswith(" ") else value

    task = asyncio.create_task(read())
    try:
        yield stream
    finally:
        task.cancel()  # the dropped connection
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_buyer_follows_the_on_sale_live_and_resumes_after_a_dropped_connection(
    api: str, resources: Resources
) -> None:
    res = resources
    admin = await make_account(res, "admin")
    event = await make_event(res, capacity=1)
    eid = str(event.id)
    first, second, third, me = [await make_account(res) for _ in range(4)]

    async with httpx.AsyncClient(base_url=api, timeout=30) as http:

        async def ok(r: Any) -> Any:
            response = await r
            assert response.status_code < 300, response.text
            return response.json()

        async def join(who: Account) -> Any:
            return await ok(http.post(f"{API}/events/{eid}/queue", headers=who.headers))

        async def reserve(who: Account, token: str) -> str:
            body = {"event_id": eid, "quantity": 1}
            headers = {**who.headers, "Admission-Token": token}
            booking = await ok(http.post(f"{API}/bookings/reserve", json=body, headers=headers))
            return str(booking["booking_id"])

        async def cancel(who: Account, booking_id: str) -> None:
            await ok(http.delete(f"{API}/bookings/{booking_id}", headers=who.headers))

        await ok(
            http.patch(f"{API}/admin/events/{eid}", json={"queue": "on"}, headers=admin.headers)
        )
        async with (
            listen(http, f"{API}/events/{eid}/stream", {}) as event_stream,
            listen(http, f"{API}/users/stream", me.headers) as mine,
        ):
            assert (await event_stream.next("snapshot")).data["queue"] == "on"
            tickets = [await join(w) for w in (first, second, third)]
            await join(me)  # fourth in line for one seat
            # one seat: the line admits 1.5 x the seats left (first and second); I am 2nd
            await mine.next("queue", lambda d: d["state"] == "waiting" and d["position"] == 2)

            async def token_of(who: Account, ticket: Any) -> str:
                url = f"{API}/events/{eid}/queue/{ticket['queue_ticket']}"
                for _ in range(200):
                    found = await ok(http.get(url, headers=who.headers))
                    if found["state"] == "admitted":
                        return str(found["admission_token"])
                    await asyncio.sleep(0.1)
                raise AssertionError(found)

            held = await reserve(first, await token_of(first, tickets[0]))
            sold_out = await event_stream.next("sold_out")
            assert sold_out.id is not None
            assert sold_out.data["available"] == 0
            await mine.next("queue", lambda d: d["state"] == "sold_out")

            await cancel(first, held)  # the seat is back: third is admitted, I move up
            await event_stream.next("availability", lambda d: d["available"] == 1)
            await mine.next("queue", lambda d: d["state"] == "waiting" and d["position"] == 1)
            held = await reserve(second, await token_of(second, tickets[1]))
            await cancel(second, held)  # back again: now it is my turn
            got = await mine.each(
                {
                    "admitted": None,
                    "queue": lambda d: d["state"] == "admitted" and d["admission_token"],
                }
            )
            admitted = got["admitted"]
            assert admitted.id is not None
            assert admitted.data["event_id"] == eid
            held = await reserve(third, await token_of(third, tickets[2]))  # third is quicker
            await event_stream.next("sold_out")
            last_seen = mine.last_id
            assert last_seen == admitted.id

        # my connection dropped; meanwhile I join the waitlist and the seat comes back to it
        await ok(
            http.post(
                f"{API}/waitlist/join", json={"event_id": eid, "quantity": 1}, headers=me.headers
            )
        )
        await cancel(third, held)
        async with listen(
            http, f"{API}/users/stream", {**me.headers, "Last-Event-ID": str(last_seen)}
        ) as resumed:
            offer = await resumed.next("waitlist_offer")
            assert offer.data["event_id"] == eid
            assert offer.data["seats"] == 1
            assert resumed.content_type.startswith("text/event-stream")

        # a stream of my own channel from its start has everything, in order, once each
        async with listen(http, f"{API}/users/stream", {**me.headers, "Last-Event-ID": "0-0"}) as s:
            assert (await s.next("admitted")).id == admitted.id
            assert (await s.next("waitlist_offer")).id == offer.id


async def test_streams_refuse_unknown_events_and_anonymous_buyers(api: str) -> None:
    async with httpx.AsyncClient(base_url=api, timeout=10) as http:
        r = await http.get(f"{API}/events/00000000-0000-4000-8000-00000000dead/stream")
        assert r.status_code == 404
        assert r.json()["code"] == "event_not_found"
        r = await http.get(f"{API}/users/stream")
        assert r.status_code == 401
