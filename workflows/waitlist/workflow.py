"""WaitlistWorkflow: hands seats freed on a sold-out event to the people waiting for them.

One workflow per event, id ``waitlist-<event_id>``, booking task queue, started with
signal-with-start (``seats_freed``) by the booking workflow's release step whenever the release
statement kept seats for the waitlist, and by the API (a join when seats are pooled, a leave or
a declined offer after its transaction commits).

Postgres holds all the state: ``events.waitlist_pool`` (freed seats kept for the waitlist,
counted in ``held``), the entries (waiting → offered → accepted / expired / left) and each
offer's ``offer_expires_at``. The workflow only decides *when*: it runs ``waitlist_allocate``
(offer pooled seats to the waiting entries in join order, or give them back to the public pool
when nobody waits) whenever something changed, and keeps one timer per open offer: a reminder at
80 % of the window, then ``waitlist_expire_offer`` (the offered seats go back to the pool and
are allocated again). Every allocation returns *all* open offers from Postgres, so a retried
activity, a new run after continue-as-new or a replacement worker re-arms exactly the offers
that exist — an offer is never made twice and never forgotten.

The workflow ends when no offer is open and nothing is pending; the next signal-with-start
begins a fresh run.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from evently.enums import WaitlistStatus
    from workflows import common
    from workflows.waitlist.contract import (
        QUERY_STATE,
        SIGNAL_SEATS_FREED,
        WAITLIST_ALLOCATE,
        WAITLIST_EXPIRE_OFFER,
        WAITLIST_LEAVE,
        WAITLIST_REMIND,
        WORKFLOW_NAME,
        AllocateInput,
        AllocateResult,
        LeaveInput,
        LeaveResult,
        OfferRef,
        OpenOffer,
        WaitlistInput,
        WaitlistState,
    )

REMIND_AT = 0.8  # share of the offer window after which "your offer lapses soon" is sent

T = TypeVar("T")


@dataclass
class _Timer:
    offer: OpenOffer
    remind_at: datetime
    reminded: bool = False


async def _local(name: str, arg: Any, result_type: type[T]) -> T:
    result: T = await workflow.execute_local_activity(
        name,
        arg,
        result_type=result_type,
        start_to_close_timeout=timedelta(seconds=10),
        retry_policy=common.DB_RETRY,
    )
    return result


@workflow.defn(name=WORKFLOW_NAME)
class WaitlistWorkflow:
    @workflow.init
    def __init__(self, data: WaitlistInput) -> None:
        self.data = data
        self.dirty = True  # allocate once at start: a new run picks up whatever is pooled
        self.timers: dict[str, _Timer] = {}
        self.history: list[str] = []

    @workflow.signal(name=SIGNAL_SEATS_FREED)
    def seats_freed(self) -> None:
        self.dirty = True

    # Kept only so that runs from before leaving moved out of the workflow (histories with a
    # ``leave`` update) still replay; the API now leaves in one transaction and signals
    # ``seats_freed`` (api/waitlist/service.py). Remove once no such run is within retention.
    @workflow.update
    async def leave(self, req: LeaveInput) -> LeaveResult:
        result = await _local(WAITLIST_LEAVE, req, LeaveResult)
        if result.declined_offer:
            self.timers.pop(result.declined_offer, None)
            self._log(f"offer {result.declined_offer} declined ({result.seats_returned} seats)")
        if result.status == WaitlistStatus.LEFT:
            self.dirty = True  # the pool may now fit someone else, or nobody is left
        return result

    @workflow.query(name=QUERY_STATE)
    def state(self) -> WaitlistState:
        return WaitlistState(
            event_id=self.data.event_id,
            open_offers=[t.offer for t in self.timers.values()],
            history=list(self.history),
        )

    @workflow.run
    async def run(self, data: WaitlistInput) -> None:
        window = timedelta(seconds=data.offer_seconds)
        while True:
            if self.dirty:
                self.dirty = False
                res = await _local(
                    WAITLIST_ALLOCATE,
                    AllocateInput(event_id=data.event_id, offer_expires_at=workflow.now() + window),
                    AllocateResult,
                )
                self._track(res.open_offers, window)
                workflow.set_current_details(
                    f"{len(self.timers)} offers open; {res.pooled} freed seats kept for the "
                    "waitlist" + ("; closed (the event is off sale)" if res.closed else "")
                )
                if res.offered or res.returned_to_public or res.closed:
                    self._log(
                        f"allocated: offers {res.offered}, {res.returned_to_public} seats back "
                        f"to the public, {res.pooled} pooled" + (", closed" if res.closed else "")
                    )
                continue
            now = workflow.now()
            due = sorted(
                (t for t in self.timers.values() if t.offer.expires_at <= now),
                key=lambda t: t.offer.expires_at,
            )
            if due:
                for t in due:
                    lapsed = await _local(WAITLIST_EXPIRE_OFFER, self._ref(t.offer), bool)
                    self.timers.pop(t.offer.offer_id, None)
                    if lapsed:
                        self._log(f"offer {t.offer.offer_id} lapsed")
                        self.dirty = True
                continue
            remind = [t for t in self.timers.values() if not t.reminded and t.remind_at <= now]
            if remind:
                for t in remind:
                    await _local(WAITLIST_REMIND, self._ref(t.offer), bool)
                    t.reminded = True
                continue
            if not self.timers:
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self.dirty:
                    continue
                return
            info = workflow.info()
            if info.is_continue_as_new_suggested() or info.get_current_history_length() > (
                data.max_history
            ):
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(data)
            next_at = min(
                t.offer.expires_at if t.reminded else min(t.remind_at, t.offer.expires_at)
                for t in self.timers.values()
            )
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self.dirty, timeout=max((next_at - now).total_seconds(), 0.001)
                )

    def _track(self, open_offers: list[OpenOffer], window: timedelta) -> None:
        """The open offers in Postgres are the truth: arm new ones, drop closed ones."""
        timers: dict[str, _Timer] = {}
        for offer in open_offers:
            known = self.timers.get(offer.offer_id)
            if known is not None:
                known.offer = offer
                timers[offer.offer_id] = known
            else:
                remind_at = offer.expires_at - window * (1 - REMIND_AT)
                timers[offer.offer_id] = _Timer(offer, remind_at, workflow.now() >= remind_at)
        self.timers = timers

    def _ref(self, offer: OpenOffer) -> OfferRef:
        return OfferRef(
            event_id=self.data.event_id, entry_id=offer.entry_id, offer_id=offer.offer_id
        )

    def _log(self, line: str) -> None:
        self.history.append(f"{workflow.now().isoformat()} {line}")
        del self.history[:-200]
