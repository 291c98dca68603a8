"""Reserved seating (issue 34): seating plans of a venue, an event's plan and blocked seats
(organizer), and the seat map (public): the plan as the event uses it and the live state.
SQL lives in evently/seating.py."""

from __future__ import annotations

import gzip
import json
import uuid
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ResourcesDep, SessionDep, end_transaction
from api.http.conditional import IfNoneMatch, conditional_responses, etag, validated
from api.organizations.deps import EventManager
from api.problems import problem_responses
from evently import seating
from evently.errors import (
    EventNotFound,
    EventNotSeated,
    MalformedJson,
    SeatingPlanInvalid,
    SeatingPlanNotFound,
    SeatsNotChangeable,
    VenueNotInOrganization,
)
from evently.inventory.gate import Gate

router = APIRouter(tags=["seating"])

_PLAN_BODY = {
    "content": {
        "application/json": {"schema": {"type": "object"}},
        "text/csv": {"schema": {"type": "string"}},
    },
    "required": True,
}


class SeatingPlanOut(BaseModel):
    id: uuid.UUID
    venue_id: uuid.UUID
    name: str
    seats: int
    categories: dict[str, int]


@router.post(
    "/organizations/{org_id}/venues/{venue_id}/seating-plans",
    status_code=status.HTTP_201_CREATED,
    response_model=SeatingPlanOut,
    responses=problem_responses(MalformedJson, SeatingPlanInvalid, VenueNotInOrganization),
    summary="Import a seating plan of a venue: JSON sections/rows/seats, or text/csv "
    "(section,row,seat,x,y,category) (owners, managers)",
    openapi_extra={"requestBody": _PLAN_BODY},
)
async def create_seating_plan(
    venue_id: uuid.UUID,
    request: Request,
    access: EventManager,
    session: SessionDep,
    name: Annotated[str, Header(alias="X-Plan-Name", max_length=200)] = "Seating plan",
) -> SeatingPlanOut:
    raw = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "text/csv":
        plan = seating.parse_csv(raw.decode("utf-8", "replace"), name)
    else:
        try:
            body: Any = json.loads(raw)
        except ValueError:
            raise MalformedJson() from None
        plan = seating.parse_json(body)
    plan_id, categories = await seating.create_plan(session, access.organization.id, venue_id, plan)
    return SeatingPlanOut(
        id=plan_id, venue_id=venue_id, name=plan.name, seats=len(plan.seats), categories=categories
    )


class EventPlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seating_plan_id: uuid.UUID | None


class EventPlanOut(BaseModel):
    event_id: uuid.UUID
    seating_plan_id: uuid.UUID | None
    capacity: int | None


@router.put(
    "/organizations/{org_id}/events/{event_id}/seating-plan",
    response_model=EventPlanOut,
    responses=problem_responses(EventNotFound, SeatingPlanNotFound, SeatsNotChangeable),
    summary="A draft names its seating plan (capacity = the plan's seats) or none",
)
async def set_event_plan(
    event_id: uuid.UUID, body: EventPlanIn, access: EventManager, session: SessionDep
) -> EventPlanOut:
    capacity = await seating.attach_plan(
        session, event_id, body.seating_plan_id, organization_id=access.organization.id
    )
    return EventPlanOut(event_id=event_id, seating_plan_id=body.seating_plan_id, capacity=capacity)


class BlockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seats: list[Annotated[str, Field(min_length=1, max_length=130)]] = Field(
        min_length=1, max_length=5000
    )
    blocked: bool = True


class BlockOut(BaseModel):
    event_id: uuid.UUID
    changed: int
    blocked: bool


@router.post(
    "/organizations/{org_id}/events/{event_id}/blocked-seats",
    response_model=BlockOut,
    responses=problem_responses(EventNotFound, SeatsNotChangeable),
    summary="Block free seats (sponsors, technical) or free blocked ones: all or none",
)
async def block_seats(
    event_id: uuid.UUID,
    body: BlockIn,
    access: EventManager,
    session: SessionDep,
    res: ResourcesDep,
) -> BlockOut:
    n = await seating.set_blocked(
        session, event_id, body.seats, body.blocked, organization_id=access.organization.id
    )
    # committed, then the sold-out gate and the seated refusal notes are rebuilt: ``available``
    # moved, and a seat unblocked is free (evently/inventory/gate.py)
    await end_transaction(session)
    await Gate(res.redis).reset(event_id)
    return BlockOut(event_id=event_id, changed=n, blocked=body.blocked)


class SeatOut(BaseModel):
    id: str
    section: str
    row: str
    label: str
    x: float
    y: float
    category: str
    flags: list[str]


class SeatingOut(BaseModel):
    event_id: uuid.UUID
    plan_id: uuid.UUID
    name: str
    categories: dict[str, str]  # category -> its lowest visible price
    seats: list[SeatOut]


@router.get(
    "/events/{event_id}/seating",
    response_model=SeatingOut,
    responses={
        **conditional_responses(),
        **problem_responses(EventNotFound, EventNotSeated),
    },
    summary="The seating plan as the event uses it (cacheable: revalidate with If-None-Match)",
)
async def get_seating(
    event_id: uuid.UUID, response: Response, session: SessionDep, if_none_match: IfNoneMatch = None
) -> Any:
    plan = await seating.seating(session, event_id)
    tag = etag("seating", plan["plan_id"], json.dumps(plan["categories"], sort_keys=True))
    cached = validated(response, tag, if_none_match)
    return cached if cached is not None else plan


class SeatStateOut(BaseModel):
    taken: list[str]  # held or sold (never by whom)
    blocked: list[str]
    # every other seat of the plan is free


@router.get(
    "/events/{event_id}/seats",
    response_model=SeatStateOut,
    responses={
        **conditional_responses(),
        **problem_responses(EventNotFound, EventNotSeated),
    },
    summary="The live seat state: taken and blocked seat ids (ETag; 304 when unchanged)",
)
async def get_seats(
    event_id: uuid.UUID,
    request: Request,
    response: Response,
    session: SessionDep,
    if_none_match: IfNoneMatch = None,
) -> Any:
    state = await seating.seat_state(session, event_id)
    cached = validated(response, f'"{state.version}"', if_none_match)
    if cached is not None:
        return cached
    # the JSON as Postgres built it (no model round trip for tens of thousands of ids),
    # gzipped when the client takes it: a stadium's state is ~10 bytes per unfree seat
    headers = {k: response.headers[k] for k in ("ETag", "Cache-Control")}  # validated()'s
    headers["Vary"] = "Accept-Encoding"
    body = state.body
    if len(body) >= GZIP_MIN_BYTES and "gzip" in request.headers.get("accept-encoding", ""):
        body = _gzipped(state)
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type="application/json", headers=headers)


GZIP_MIN_BYTES = 1024
#: (event, version) -> the gzipped state: every viewer of one state shares one compression
_GZIPPED: OrderedDict[tuple[uuid.UUID, str], bytes] = OrderedDict()
_GZIPPED_MAX = 64


def _gzipped(state: seating.SeatState) -> bytes:
    key = (state.event_id, state.version)
    found = _GZIPPED.get(key)
    if found is None:
        found = gzip.compress(state.body, compresslevel=6, mtime=0)
        _GZIPPED[key] = found
        if len(_GZIPPED) > _GZIPPED_MAX:
            _GZIPPED.popitem(last=False)
    else:
        _GZIPPED.move_to_end(key)
    return found
