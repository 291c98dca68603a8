"""Seating plans and seated events (issue 34): a plan's import (JSON or CSV) and validation, an
event's copy of its plan's seats, blocked seats, and the two reads of the seat map (the plan as
the event uses it, and the live state: taken and blocked seat ids).

A seat's ``id`` is ``"<section>-<row>-<label>"``, unique within the plan and so within the
event. Seat statements that hold or free seats for bookings live in
evently/inventory/reserved.py.
"""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from evently.enums import EventStatus
from evently.errors import (
    EventNotFound,
    EventNotSeated,
    SeatingPlanInvalid,
    SeatingPlanNotFound,
    SeatsNotChangeable,
    VenueNotInOrganization,
)

FLAGS = frozenset({"wheelchair", "companion", "restricted_view", "aisle", "obstructed"})
MAX_SEATS = 100_000
CSV_HEADER = ["section", "row", "seat", "x", "y", "category"]
_MAX_ERRORS = 20


@dataclass
class Seat:
    seat_id: str
    section: str
    row: str
    label: str
    x: float
    y: float
    category: str
    flags: list[str]
    section_rank: int
    row_rank: int
    pos: int


@dataclass
class ParsedPlan:
    name: str
    seats: list[Seat] = field(default_factory=list)


class _Errors:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, msg: str) -> None:
        if len(self.items) < _MAX_ERRORS:
            self.items.append(msg)

    def raise_if_any(self) -> None:
        if self.items:
            raise SeatingPlanInvalid(
                f"The seating plan is invalid: {self.items[0]}", errors=self.items
            )


def _text(value: Any, what: str, errors: _Errors, *, limit: int = 40) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        errors.add(f"{what}: a non-empty text of at most {limit} characters is required")
        return ""
    if "-" in value and what.endswith("section"):
        pass
    return value.strip()


def _number(value: Any, what: str, errors: _Errors) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        errors.add(f"{what}: a number is required")
        return 0.0
    if not -1e6 <= float(value) <= 1e6:
        errors.add(f"{what}: out of range")
    return float(value)


def _check(seats: list[Seat], errors: _Errors) -> None:
    if not seats:
        errors.add("the plan has no seats")
    if len(seats) > MAX_SEATS:
        errors.add(f"the plan has {len(seats)} seats; at most {MAX_SEATS}")
    ids: set[str] = set()
    places: dict[tuple[float, float], str] = {}
    for s in seats:
        if s.seat_id in ids:
            errors.add(f"seat {s.seat_id}: its label is not unique in its row")
        ids.add(s.seat_id)
        other = places.setdefault((s.x, s.y), s.seat_id)
        if other != s.seat_id:
            errors.add(f"seat {s.seat_id}: same position as seat {other}")
        for flag in s.flags:
            if flag not in FLAGS:
                errors.add(f"seat {s.seat_id}: unknown flag {flag!r} (one of {sorted(FLAGS)})")


def _order(seats: list[Seat]) -> None:
    """The ranks best-available orders by: sections and rows in the order given, seats in a
    row by x (the row's left-to-right order)."""
    sections: dict[str, int] = {}
    rows: dict[tuple[str, str], int] = {}
    for s in seats:
        s.section_rank = sections.setdefault(s.section, len(sections))
        s.row_rank = rows.setdefault((s.section, s.row), len(rows))
    by_row: dict[tuple[str, str], list[Seat]] = {}
    for s in seats:
        by_row.setdefault((s.section, s.row), []).append(s)
    for row in by_row.values():
        for i, s in enumerate(sorted(row, key=lambda s: (s.x, s.y))):
            s.pos = i


def _seat(
    section: str, row: str, label: str, x: float, y: float, cat: str, flags: list[str]
) -> Seat:
    return Seat(f"{section}-{row}-{label}", section, row, label, x, y, cat, flags, 0, 0, 0)


def parse_json(body: Any) -> ParsedPlan:
    """``{"name", "sections": [{"name", "rows": [{"label", "seats": [{"label", "x", "y",
    "category", "flags"}]}]}]}`` → the plan, or SeatingPlanInvalid listing the problems."""
    errors = _Errors()
    if not isinstance(body, dict):
        raise SeatingPlanInvalid("The seating plan must be a JSON object.")
    plan = ParsedPlan(name=_text(body.get("name"), "name", errors, limit=200))
    sections = body.get("sections")
    if not isinstance(sections, list) or not sections:
        errors.add("sections: a non-empty list is required")
        errors.raise_if_any()
        return plan
    for i, sec in enumerate(sections):
        if not isinstance(sec, dict):
            errors.add(f"sections[{i}]: an object is required")
            continue
        sname = _text(sec.get("name"), f"sections[{i}].name", errors)
        rows = sec.get("rows")
        if not isinstance(rows, list) or not rows:
            errors.add(f"section {sname}: rows: a non-empty list is required")
            continue
        for j, row in enumerate(rows):
            if not isinstance(row, dict):
                errors.add(f"section {sname} rows[{j}]: an object is required")
                continue
            rlabel = _text(row.get("label"), f"section {sname} rows[{j}].label", errors)
            seats = row.get("seats")
            if not isinstance(seats, list) or not seats:
                errors.add(f"section {sname} row {rlabel}: seats: a non-empty list is required")
                continue
            for k, st in enumerate(seats):
                where = f"section {sname} row {rlabel} seats[{k}]"
                if not isinstance(st, dict):
                    errors.add(f"{where}: an object is required")
                    continue
                flags = st.get("flags", [])
                if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
                    errors.add(f"{where}.flags: a list of texts is required")
                    flags = []
                plan.seats.append(
                    _seat(
                        sname,
                        rlabel,
                        _text(st.get("label"), f"{where}.label", errors),
                        _number(st.get("x"), f"{where}.x", errors),
                        _number(st.get("y"), f"{where}.y", errors),
                        _text(st.get("category"), f"{where}.category", errors),
                        list(flags),
                    )
                )
            if len(plan.seats) > MAX_SEATS:
                break
    _check(plan.seats, errors)
    errors.raise_if_any()
    _order(plan.seats)
    return plan


def parse_csv(data: str, name: str) -> ParsedPlan:
    """A ``section,row,seat,x,y,category`` CSV (an optional 7th column ``flags``, separated by
    ``|``) → the plan."""
    errors = _Errors()
    plan = ParsedPlan(name=_text(name, "name", errors, limit=200))
    reader = csv.reader(io.StringIO(data))
    header = next(reader, None)
    if header is None or [h.strip().lower() for h in header[:6]] != CSV_HEADER:
        raise SeatingPlanInvalid(
            "The CSV must start with the header section,row,seat,x,y,category.",
            errors=["header: section,row,seat,x,y,category expected"],
        )
    for n, rec in enumerate(reader, start=2):
        if not rec or all(not c.strip() for c in rec):
            continue
        if len(rec) not in (6, 7):
            errors.add(f"line {n}: 6 columns expected")
            continue
        try:
            x, y = float(rec[3]), float(rec[4])
        except ValueError:
            errors.add(f"line {n}: x and y must be numbers")
            continue
        flags = [f for f in rec[6].split("|") if f] if len(rec) == 7 else []
        plan.seats.append(
            _seat(
                _text(rec[0], f"line {n} section", errors),
                _text(rec[1], f"line {n} row", errors),
                _text(rec[2], f"line {n} seat", errors),
                x,
                y,
                _text(rec[5], f"line {n} category", errors),
                flags,
            )
        )
        if len(plan.seats) > MAX_SEATS:
            break
    _check(plan.seats, errors)
    errors.raise_if_any()
    _order(plan.seats)
    return plan


_COLUMNS = "seat_id, section, row, label, x, y, category, flags, section_rank, row_rank, pos"
_INSERT_PLAN_SEATS = text(
    f"""INSERT INTO plan_seats (plan_id, {_COLUMNS})
    SELECT :plan_id, u.s, u.sec, u.r, u.l, u.x, u.y, u.c, CAST(u.f AS text[]), u.sr, u.rr, u.p
    FROM unnest(
        CAST(:seat_id AS text[]), CAST(:section AS text[]), CAST(:row AS text[]),
        CAST(:label AS text[]), CAST(:x AS float8[]), CAST(:y AS float8[]),
        CAST(:category AS text[]), CAST(:flags AS text[]), CAST(:section_rank AS int[]),
        CAST(:row_rank AS int[]), CAST(:pos AS int[]))
        AS u(s, sec, r, l, x, y, c, f, sr, rr, p)"""
)
_BATCH = 10_000


async def create_plan(
    session: AsyncSession, organization_id: uuid.UUID, venue_id: uuid.UUID, plan: ParsedPlan
) -> tuple[uuid.UUID, dict[str, int]]:
    """Store a validated plan of one of the organization's venues: one ``unnest`` insert per
    10,000 seats (a 50,000-seat plan is five statements). Returns its id and seats per
    category."""
    found = (
        await session.execute(
            text("SELECT 1 FROM venues WHERE id = :v AND organization_id = :o"),
            {"v": venue_id, "o": organization_id},
        )
    ).first()
    if found is None:
        raise VenueNotInOrganization()
    plan_id = uuid.uuid4()
    await session.execute(
        text(
            "INSERT INTO seating_plans (id, organization_id, venue_id, name, seats) "
            "VALUES (:id, :o, :v, :name, :n)"
        ),
        {
            "id": plan_id,
            "o": organization_id,
            "v": venue_id,
            "name": plan.name,
            "n": len(plan.seats),
        },
    )
    for start in range(0, len(plan.seats), _BATCH):
        chunk = plan.seats[start : start + _BATCH]
        await session.execute(
            _INSERT_PLAN_SEATS,
            {
                "plan_id": plan_id,
                "seat_id": [s.seat_id for s in chunk],
                "section": [s.section for s in chunk],
                "row": [s.row for s in chunk],
                "label": [s.label for s in chunk],
                "x": [s.x for s in chunk],
                "y": [s.y for s in chunk],
                "category": [s.category for s in chunk],
                # a text[] per seat: sent as its literal, cast back by the column
                "flags": ["{" + ",".join(s.flags) + "}" for s in chunk],
                "section_rank": [s.section_rank for s in chunk],
                "row_rank": [s.row_rank for s in chunk],
                "pos": [s.pos for s in chunk],
            },
        )
    categories: dict[str, int] = {}
    for s in plan.seats:
        categories[s.category] = categories.get(s.category, 0) + 1
    return plan_id, categories


async def attach_plan(
    session: AsyncSession,
    event_id: uuid.UUID,
    plan_id: uuid.UUID | None,
    *,
    organization_id: uuid.UUID | None = None,
) -> int | None:
    """A draft names its plan (or none): its seats become the plan's copy and its capacity
    (and ``available``) the plan's seats. Only a draft without bookings; the plan must be one
    of the event's organization. Returns the new capacity (None: plan removed)."""
    ev = (
        await session.execute(
            text(
                "SELECT status, organization_id FROM events WHERE id = :e "
                "AND (CAST(:o AS uuid) IS NULL OR organization_id = :o) FOR NO KEY UPDATE"
            ),
            {"e": event_id, "o": organization_id},
        )
    ).first()
    if ev is None:
        raise EventNotFound()
    if ev.status != "draft":
        raise SeatsNotChangeable("A seating plan can only be set on a draft.")
    await session.execute(text("DELETE FROM event_seats WHERE event_id = :e"), {"e": event_id})
    if plan_id is None:
        await session.execute(
            text("UPDATE events SET seating_plan_id = NULL WHERE id = :e"), {"e": event_id}
        )
        return None
    plan = (
        await session.execute(
            text("SELECT seats FROM seating_plans WHERE id = :p AND organization_id = :o"),
            {"p": plan_id, "o": ev.organization_id},
        )
    ).first()
    if plan is None:
        raise SeatingPlanNotFound()
    await session.execute(
        text(
            f"INSERT INTO event_seats (event_id, {_COLUMNS}) "
            f"SELECT :e, {_COLUMNS} FROM plan_seats WHERE plan_id = :p"
        ),
        {"e": event_id, "p": plan_id},
    )
    await session.execute(
        text(
            "UPDATE events SET seating_plan_id = :p, capacity = :n, available = :n, "
            "updated_at = now() WHERE id = :e"
        ),
        {"p": plan_id, "n": plan.seats, "e": event_id},
    )
    return int(plan.seats)


async def blocked_ids(session: AsyncSession, event_id: uuid.UUID) -> list[str]:
    """The seats the organizer blocked on an event (sponsors, technical)."""
    rows = await session.execute(
        text("SELECT seat_id FROM event_seats WHERE event_id = :e AND blocked ORDER BY seat_id"),
        {"e": event_id},
    )
    return [r.seat_id for r in rows]


async def set_blocked(
    session: AsyncSession,
    event_id: uuid.UUID,
    seat_ids: list[str],
    blocked: bool,
    *,
    organization_id: uuid.UUID | None = None,
) -> int:
    """Block free seats (sponsors, technical) or free blocked ones: all or none. A blocked seat
    leaves the event's capacity and ``available`` (the counters' CHECK stays true), so the
    sold-out gate and the counters never sell it."""
    ev = (
        await session.execute(
            text(
                "SELECT status FROM events WHERE id = :e "
                "AND (CAST(:o AS uuid) IS NULL OR organization_id = :o) FOR NO KEY UPDATE"
            ),
            {"e": event_id, "o": organization_id},
        )
    ).first()
    if ev is None:
        raise EventNotFound()
    ids = sorted(set(seat_ids))
    changed = (
        await session.execute(
            text(
                "UPDATE event_seats SET blocked = :b WHERE event_id = :e "
                "AND seat_id = ANY(:ids) AND blocked = NOT :b AND booking_id IS NULL "
                "RETURNING seat_id"
            ),
            {"b": blocked, "e": event_id, "ids": ids},
        )
    ).all()
    if len(changed) != len(ids):
        raise SeatsNotChangeable(
            "Only free seats of this event can be blocked, only its blocked seats freed."
        )
    delta = -len(ids) if blocked else len(ids)
    res = await session.execute(
        text(
            "UPDATE events SET capacity = capacity + :d, available = available + :d, "
            "updated_at = GREATEST(clock_timestamp(), updated_at + interval '1 microsecond') "
            "WHERE id = :e AND available + :d >= 0 AND capacity + :d > 0 RETURNING id"
        ),
        {"d": delta, "e": event_id},
    )
    if res.first() is None:
        raise SeatsNotChangeable("These seats are not on sale now (held for the waitlist).")
    return len(ids)


async def seating(session: AsyncSession, event_id: uuid.UUID) -> dict[str, Any]:
    """The plan as the event uses it: every seat with its section, row, label, position,
    category and flags (static while the event is on sale: cacheable)."""
    ev = (
        await session.execute(
            text(
                "SELECT e.seating_plan_id, e.status, p.name FROM events e "
                "LEFT JOIN seating_plans p ON p.id = e.seating_plan_id WHERE e.id = :e"
            ),
            {"e": event_id},
        )
    ).first()
    if ev is None or ev.status == "draft":
        raise EventNotFound()
    if ev.seating_plan_id is None:
        raise EventNotSeated()
    rows = (
        await session.execute(
            text(
                "SELECT seat_id, section, row, label, x, y, category, flags FROM event_seats "
                "WHERE event_id = :e ORDER BY section_rank, row_rank, pos"
            ),
            {"e": event_id},
        )
    ).all()
    prices = (
        await session.execute(
            text(
                "SELECT seat_category, min(price) AS price FROM ticket_types "
                "WHERE event_id = :e AND seat_category IS NOT NULL AND NOT hidden "
                "GROUP BY seat_category"
            ),
            {"e": event_id},
        )
    ).all()
    return {
        "event_id": str(event_id),
        "plan_id": str(ev.seating_plan_id),
        "name": ev.name,
        "categories": {p.seat_category: f"{p.price:.2f}" for p in prices},
        "seats": [
            {
                "id": r.seat_id,
                "section": r.section,
                "row": r.row,
                "label": r.label,
                "x": r.x,
                "y": r.y,
                "category": r.category,
                "flags": list(r.flags),
            }
            for r in rows
        ],
    }


@dataclass(frozen=True)
class SeatState:
    event_id: uuid.UUID
    body: bytes  # JSON {"taken": [seat ids], "blocked": [seat ids]}, ids in order
    version: str  # the ETag: a digest of the body


# Built by Postgres as one JSON text: a stadium's state (tens of thousands of ids) costs one
# row to Python, not a row per seat (bench/seat_map.py measured 1.3 s p50 the other way).
_STATE = text(
    """
SELECT json_build_object(
    'taken', coalesce(json_agg(seat_id ORDER BY seat_id) FILTER (WHERE NOT blocked), '[]'),
    'blocked', coalesce(json_agg(seat_id ORDER BY seat_id) FILTER (WHERE blocked), '[]')
)::text AS body
FROM event_seats WHERE event_id = :e AND (blocked OR booking_id IS NOT NULL)
"""
)


async def seat_state(session: AsyncSession, event_id: uuid.UUID) -> SeatState:
    """The live state: taken (held or sold: never by whom) and blocked seat ids; every other
    seat of the plan is free."""
    ev = (
        await session.execute(
            text("SELECT seating_plan_id, status FROM events WHERE id = :e"), {"e": event_id}
        )
    ).first()
    if ev is None or ev.status == "draft":
        raise EventNotFound()
    if ev.seating_plan_id is None:
        raise EventNotSeated()
    body = str(await session.scalar(_STATE, {"e": event_id})).encode()
    return SeatState(
        event_id=event_id, body=body, version=hashlib.blake2b(body, digest_size=12).hexdigest()
    )


# ---- is this event seated? (the reserve path asks; a per-process cache) -----------------------

_SEATED = text("SELECT seating_plan_id IS NOT NULL AS seated, status FROM events WHERE id = :id")
#: event id → seated, for events past their draft (a plan is only set on a draft, so the answer
#: of a published or ended event never changes); bounded: cleared when full
_SEATED_CACHE: dict[uuid.UUID, bool] = {}
_SEATED_CACHE_MAX = 50_000


async def is_seated(engine: AsyncEngine, event_id: uuid.UUID) -> bool:
    """Does the event sell reserved seats? One primary-key read per event per process (a
    draft's answer is not kept: its plan may still change). An unknown event: False (the
    reserve answers 404 as before)."""
    found = _SEATED_CACHE.get(event_id)
    if found is not None:
        return found
    async with engine.connect() as conn:
        row = (await conn.execute(_SEATED, {"id": event_id})).first()
    if row is None:
        return False
    if row.status != EventStatus.DRAFT:
        if len(_SEATED_CACHE) >= _SEATED_CACHE_MAX:
            _SEATED_CACHE.clear()
        _SEATED_CACHE[event_id] = bool(row.seated)
    return bool(row.seated)


# ---- the storefront's seat map: what each category's seat costs (issue 34) ---------------------


@dataclass(frozen=True)
class SeatType:
    """The ticket type a seat id reserve books a category's seats as (the first type of that
    ``seat_category`` by position, as evently/inventory/reserved.py ``types`` picks it), or the
    default type (``category`` None: every seat no type names)."""

    ticket_type_id: uuid.UUID
    name: str
    category: str | None
    price: str  # "45.00"
    currency: str
    hidden: bool


_SEAT_TYPES = text(
    "SELECT id, name, seat_category, is_default, price, currency, hidden FROM ticket_types "
    "WHERE event_id = :e AND (seat_category IS NOT NULL OR is_default) "
    "ORDER BY is_default, position, created_at"
)


async def seat_types(session: AsyncSession, event_id: uuid.UUID) -> list[SeatType]:
    """Per category the type that prices its seats, then the default type (if any)."""
    found: dict[str | None, SeatType] = {}
    for r in await session.execute(_SEAT_TYPES, {"e": event_id}):
        category = None if r.is_default else r.seat_category
        if category not in found:
            found[category] = SeatType(
                r.id, r.name, category, f"{r.price:.2f}", r.currency, bool(r.hidden)
            )
    return list(found.values())


# ---- the organization's plans (the back office's event form) ---------------------------------


@dataclass(frozen=True)
class PlanRow:
    id: uuid.UUID
    venue_id: uuid.UUID
    name: str
    seats: int


async def plans_of(session: AsyncSession, organization_id: uuid.UUID) -> list[PlanRow]:
    """The organization's seating plans, newest first (at most 200)."""
    rows = await session.execute(
        text(
            "SELECT id, venue_id, name, seats FROM seating_plans WHERE organization_id = :o "
            "ORDER BY created_at DESC LIMIT 200"
        ),
        {"o": organization_id},
    )
    return [PlanRow(r.id, r.venue_id, r.name, r.seats) for r in rows]
