"""Waitlist activities: local activities on the booking task queue (short Postgres
transactions of evently/waitlist.py, each keyed by the event, entry or offer so a retry changes
nothing twice), plus the hand-over the booking workflow's release step calls."""

from __future__ import annotations

from typing import Any

from temporalio import activity

from evently import live, waitlist
from evently.enums import WaitlistStatus
from evently.infra.resources import Resources
from evently.inventory import availability
from evently.inventory.gate import Gate
from evently.organizations import organization_of_event
from workflows import common
from workflows.connection import TemporalClient
from workflows.search_sync.client import request_index_write
from workflows.waitlist import client as waitlist_client
from workflows.waitlist.contract import (
    WAITLIST_ALLOCATE,
    WAITLIST_EXPIRE_OFFER,
    WAITLIST_LEAVE,
    WAITLIST_REMIND,
    WAITLIST_SEATS_FREED,
    AllocateInput,
    AllocateResult,
    LeaveInput,
    LeaveResult,
    OfferRef,
    SeatsFreed,
)


class WaitlistActivities:
    def __init__(
        self, res: Resources, temporal: TemporalClient, task_queue: str = common.BOOKING
    ) -> None:
        self.res = res
        self.temporal = temporal
        self.task_queue = task_queue  # where WaitlistWorkflow runs
        self.gate = Gate(res.redis)

    async def _refresh(self, event_id: Any) -> None:
        async with self.res.engine.connect() as conn:
            await availability.refresh(self.res.redis, conn, event_id)

    @activity.defn(name=WAITLIST_SEATS_FREED)
    async def seats_freed(self, data: SeatsFreed) -> bool:
        """Signal-with-start the event's WaitlistWorkflow. Raises while Temporal is down, so the
        booking workflow retries it: the hand-over is never lost (the seats wait in the pool)."""
        await waitlist_client.poke(
            self.temporal,
            data.event_id,
            offer_seconds=self.res.settings.waitlist_offer_seconds,
            task_queue=self.task_queue,
            organization_id=await organization_of_event(self.res.engine, data.event_id),
        )
        return True

    @activity.defn(name=WAITLIST_ALLOCATE)
    async def allocate(self, data: AllocateInput) -> AllocateResult:
        async with self.res.engine.begin() as conn:
            out = await waitlist.allocate(conn, data.event_id, data.offer_expires_at)
        await self._refresh(data.event_id)
        await live.publish_many(
            self.res.redis,
            [
                (
                    live.user_channel(offer.user_id),
                    "waitlist_offer",
                    {
                        "event_id": str(data.event_id),
                        "entry_id": str(offer.entry_id),
                        "offer_id": offer.offer_id,
                        "seats": offer.seats,
                        "expires_at": offer.expires_at.isoformat(),
                    },
                )
                for offer in out.offered
            ],
        )
        if out.returned_to_public and out.counters is not None:
            # exactly once per returning change: the version is unique to this commit
            version = availability.version_of(out.counters.updated_at)
            await self.gate.give_back_from_waitlist(data.event_id, out.returned_to_public, version)
            if out.before_available == 0 and out.counters.available > 0:
                try:
                    await request_index_write(
                        self.temporal,
                        data.event_id,
                        organization_id=await organization_of_event(self.res.engine, data.event_id),
                    )
                except Exception as exc:  # the index catches up on the next change or reindex
                    activity.logger.warning("could not request an index write: %s", exc)
        return AllocateResult(
            open_offers=out.open_offers,
            offered=[o.offer_id for o in out.offered],
            returned_to_public=out.returned_to_public,
            pooled=out.pooled,
            closed=out.closed,
        )

    @activity.defn(name=WAITLIST_EXPIRE_OFFER)
    async def expire_offer(self, data: OfferRef) -> bool:
        async with self.res.engine.begin() as conn:
            moved = await waitlist.expire_offer(conn, data.event_id, data.entry_id, data.offer_id)
        if moved:
            await self._refresh(data.event_id)
        return moved > 0

    @activity.defn(name=WAITLIST_REMIND)
    async def remind(self, data: OfferRef) -> bool:
        async with self.res.engine.begin() as conn:
            return await waitlist.remind(conn, data.entry_id, data.offer_id)

    @activity.defn(name=WAITLIST_LEAVE)
    async def leave(self, data: LeaveInput) -> LeaveResult:
        async with self.res.engine.begin() as conn:
            result = await waitlist.leave(
                conn, event_id=data.event_id, entry_id=data.entry_id, user_id=data.user_id
            )
        if result.status == WaitlistStatus.LEFT:
            await self._refresh(data.event_id)
        return result
