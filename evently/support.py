"""Support tooling: find bookings (stuck holds first), release a hold through its workflow,
and read what happened from the workflow's own history.

A release never writes to the database directly: it executes the booking workflow's
``cancel`` update with ``actor="support:<user id>"``; the workflow's activities end the
booking (recording ``ended_by`` / ``end_reason``) and return the seats exactly once, and the
update with its input stays in the workflow history for anyone to audit.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from google.protobuf.json_format import MessageToDict
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from evently.db.models import Booking
from evently.errors import Conflict, NotFound, ServiceUnavailable
from workflows.booking_models import (
    QUERY_STATE,
    UPDATE_CANCEL,
    BookingState,
    CancelInput,
    CancelResult,
    booking_workflow_id,
)

RELEASE_TIMEOUT_SECONDS = 30.0
QUERY_TIMEOUT_SECONDS = 5.0
MAX_HISTORY_EVENTS = 2000


def temporal_ui_link(ui_url: str | None, namespace: str, workflow_id: str) -> str | None:
    if not ui_url:
        return None
    return (
        f"{ui_url.rstrip('/')}/namespaces/{quote(namespace, safe='')}"
        f"/workflows/{quote(workflow_id, safe='')}"
    )


@dataclass
class BookingFilter:
    status: str | None = None
    event_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    held_longer_than_seconds: int | None = None
    stuck: bool = False


async def find_bookings(
    session: AsyncSession, f: BookingFilter, *, page: int, limit: int, now: datetime | None = None
) -> tuple[list[Booking], int]:
    """Newest first. ``stuck``: still held although the hold window is over (its workflow
    should have ended it: a worker pool is down or the workflow is failing)."""
    now = now or datetime.now(UTC)
    conds = []
    if f.status:
        conds.append(Booking.status == f.status)
    if f.event_id:
        conds.append(Booking.event_id == f.event_id)
    if f.user_id:
        conds.append(Booking.user_id == f.user_id)
    if f.held_longer_than_seconds is not None:
        conds.append(Booking.status == "held")
        conds.append(Booking.created_at < now - timedelta(seconds=f.held_longer_than_seconds))
    if f.stuck:
        # served by the partial index ix_bookings_held_expiry (hold_expires_at WHERE held)
        conds.append(Booking.status == "held")
        conds.append(Booking.hold_expires_at < now)
    total = await session.scalar(select(func.count()).select_from(Booking).where(*conds))
    rows = await session.scalars(
        select(Booking)
        .where(*conds)
        .order_by(Booking.created_at.desc(), Booking.id.desc())
        .offset((page - 1) * limit)
        .limit(limit)
    )
    return list(rows), int(total or 0)


async def release_hold(
    client: Client, booking: Booking, *, actor: str, reason: str
) -> CancelResult:
    """End a held booking now, through its workflow's ``cancel`` update."""
    if booking.status != "held":
        raise Conflict(
            f"Only a held booking can be released; this one is {booking.status}.",
            code="booking_not_held",
        )
    handle = client.get_workflow_handle(booking.workflow_id)
    try:
        result: CancelResult = await asyncio.wait_for(
            handle.execute_update(
                UPDATE_CANCEL, CancelInput(actor=actor, reason=reason), result_type=CancelResult
            ),
            timeout=RELEASE_TIMEOUT_SECONDS,
        )
    except TimeoutError as exc:
        raise ServiceUnavailable(
            "The booking workflow did not answer in time (is the booking worker pool up?).",
            code="workflow_timeout",
            retry_after=5,
        ) from exc
    except WorkflowUpdateFailedError as exc:
        raise Conflict(
            f"The booking workflow refused the release: {exc.cause}", code="release_refused"
        ) from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise Conflict(
                "The booking's workflow is not running; it cannot be released through it.",
                code="workflow_not_running",
            ) from exc
        raise ServiceUnavailable("Temporal is unavailable; retry.", retry_after=5) from exc
    return result


# ---- history ---------------------------------------------------------------------------


@dataclass
class HistoryItem:
    event_id: int
    time: datetime
    type: str
    details: dict[str, Any] = field(default_factory=dict)


def _payloads(payloads: Any) -> list[Any]:
    out = []
    for p in getattr(payloads, "payloads", []) or []:
        out.append(_payload(p))
    return out


def _payload(p: Payload) -> Any:
    encoding = p.metadata.get("encoding", b"").decode("ascii", "replace")
    if encoding.startswith("json"):
        try:
            return json.loads(p.data)
        except ValueError:
            pass
    if encoding == "binary/null":
        return None
    return f"<{encoding or 'binary'} payload, {len(p.data)} bytes>"


def _type_name(event: HistoryEvent) -> str:
    name = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
    return "".join(part.capitalize() for part in name.split("_"))


def _details(e: HistoryEvent) -> dict[str, Any]:
    t = e.event_type
    if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
        a = e.workflow_execution_started_event_attributes
        return {
            "workflow_type": a.workflow_type.name,
            "task_queue": a.task_queue.name,
            "input": _payloads(a.input),
        }
    if t == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        s = e.activity_task_scheduled_event_attributes
        return {"activity": s.activity_type.name, "task_queue": s.task_queue.name}
    if t == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
        st = e.activity_task_started_event_attributes
        return {"worker": st.identity, "attempt": st.attempt}
    if t == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
        c = e.activity_task_completed_event_attributes
        return {"worker": c.identity, "result": _payloads(c.result)}
    if t == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
        return {"failure": e.activity_task_failed_event_attributes.failure.message}
    if t == EventType.EVENT_TYPE_MARKER_RECORDED:
        m = e.marker_recorded_event_attributes
        data = {k: _payloads(v) for k, v in m.details.items()}
        return {"marker": m.marker_name, "details": data}
    if t == EventType.EVENT_TYPE_TIMER_STARTED:
        ts = e.timer_started_event_attributes
        return {"fires_in_seconds": ts.start_to_fire_timeout.ToTimedelta().total_seconds()}
    if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
        sig = e.workflow_execution_signaled_event_attributes
        return {"signal": sig.signal_name, "input": _payloads(sig.input), "by": sig.identity}
    if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
        req = e.workflow_execution_update_accepted_event_attributes.accepted_request
        return {
            "update": req.input.name,
            "update_id": req.meta.update_id,
            "by": req.meta.identity,
            "input": _payloads(req.input.args),
        }
    if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
        out = e.workflow_execution_update_completed_event_attributes.outcome
        if out.HasField("failure"):
            return {"failure": out.failure.message}
        return {"result": _payloads(out.success)}
    if t == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
        fields = e.upsert_workflow_search_attributes_event_attributes.search_attributes
        return {"search_attributes": {k: _payload(v) for k, v in fields.indexed_fields.items()}}
    if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        return {"result": _payloads(e.workflow_execution_completed_event_attributes.result)}
    if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
        return {"failure": e.workflow_execution_failed_event_attributes.failure.message}
    if t == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
        f = e.workflow_task_failed_event_attributes
        return {
            "cause": MessageToDict(f)["cause"] if f.cause else None,
            "failure": f.failure.message,
        }
    return {}


def summarize(events: list[HistoryEvent]) -> list[HistoryItem]:
    items = []
    for e in events:
        if e.event_type in (
            EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
        ):
            continue  # bookkeeping of the worker protocol: noise for support
        items.append(
            HistoryItem(
                event_id=e.event_id,
                time=e.event_time.ToDatetime(tzinfo=UTC),
                type=_type_name(e),
                details=_details(e),
            )
        )
    return items


@dataclass
class WorkflowStory:
    workflow_id: str
    run_status: str | None
    events: list[HistoryItem]
    truncated: bool
    state: BookingState | None


async def booking_story(client: Client, booking_id: uuid.UUID) -> WorkflowStory:
    """The booking workflow's history (what happened, who asked) and, when a worker answers
    quickly, its own state and log."""
    workflow_id = booking_workflow_id(booking_id)
    handle = client.get_workflow_handle(workflow_id)
    try:
        desc = await handle.describe()
        events: list[HistoryEvent] = []
        truncated = False
        async for ev in handle.fetch_history_events():
            if len(events) >= MAX_HISTORY_EVENTS:
                truncated = True
                break
            events.append(ev)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise NotFound(
                "Temporal has no workflow for this booking (never started or past retention).",
                code="workflow_not_found",
            ) from exc
        raise ServiceUnavailable("Temporal is unavailable; retry.", retry_after=5) from exc
    state: BookingState | None = None
    try:
        state = await asyncio.wait_for(
            handle.query(QUERY_STATE, result_type=BookingState), timeout=QUERY_TIMEOUT_SECONDS
        )
    except Exception:  # the state is a bonus: a worker may be down or the run long gone
        state = None
    return WorkflowStory(
        workflow_id=workflow_id,
        run_status=desc.status.name if desc.status else None,
        events=summarize(events),
        truncated=truncated,
        state=state,
    )
