"""Support's view of a booking's workflow history: the events that matter to a person (the
worker protocol's bookkeeping left out), with their payloads decoded."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from google.protobuf.json_format import MessageToDict
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent


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
