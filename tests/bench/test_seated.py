"""The seated flash sale's inputs (issue 34): its plan is a valid plan of exactly --seats seats
in sections of rows, and the specific pairs buyers ask for are adjacent seats of section A."""

from __future__ import annotations

import uuid

from bench.flash_sale import PAIR, SEATS_PER_ROW, seated_bodies, seated_plan
from evently import seating


def test_the_plan_has_exactly_the_seats_in_sections_of_rows() -> None:
    for seats in (1, 19, 500, 1_234):
        parsed = seating.parse_json(seated_plan(seats))
        assert len(parsed.seats) == seats
    parsed = seating.parse_json(seated_plan(500))
    assert {s.section for s in parsed.seats} == {"A", "B", "C", "D", "E"}


def test_buyers_ask_for_pairs_best_available_or_adjacent_in_section_a() -> None:
    event_id = uuid.uuid4()
    bodies = seated_bodies(event_id, 500, 2_000)
    assert bodies == seated_bodies(event_id, 500, 2_000)  # the same run asks the same
    specific = [b["seats"] for b in bodies if "seats" in b]
    assert 0.1 < len(specific) / len(bodies) < 0.3
    assert all(b["quantity"] == PAIR for b in bodies if "seats" not in b)
    for first, second in specific:
        s1, r1, l1 = first.split("-")
        s2, r2, l2 = second.split("-")
        assert (s1, s2, r1) == ("A", "A", r2)
        assert int(l2) == int(l1) + 1 <= SEATS_PER_ROW
