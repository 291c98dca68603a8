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


def test_a_refusal_is_spurious_only_while_what_it_refused_was_unclaimed() -> None:
    """The seated judge: one row of four seats; a pair held by booking h1 (request sent at
    t=1). A pair refused at t=0.5 (all four free) is spurious, at t=2 (seats 3-4 still free)
    too; once h2 (sent at t=3) holds 3-4 there is no pair and a refusal is true. A request
    for seats 1-2 refused at t=0.5 is spurious, at t=2 it is not."""
    from bench.flash_sale import Attempt, seated_spurious

    layout = [(f"A-1-{k}", 0, 0, k) for k in range(1, 5)]
    claims = {"h1": ["A-1-1", "A-1-2"], "h2": ["A-1-3", "A-1-4"]}
    holds = [("h1", 1.0), ("h2", 3.0)]
    bodies = [{"event_id": "e", "quantity": 2}, {"event_id": "e", "seats": ["A-1-1", "A-1-2"]}]

    def refused(buyer: int, at: float) -> Attempt:
        return Attempt(buyer, at, at, 1.0, 409, "seats_taken", None)

    def judge(*attempts: Attempt) -> int:
        return seated_spurious(list(attempts), bodies, holds, claims, layout)

    assert judge(refused(0, 0.5)) == 1
    assert judge(refused(0, 2.0)) == 1
    assert judge(refused(0, 4.0)) == 0
    assert judge(refused(1, 0.5)) == 1
    assert judge(refused(1, 2.0)) == 0
    # a sold_out for a pair is judged by the count of unclaimed seats
    assert (
        seated_spurious(
            [Attempt(0, 2.0, 2.0, 1.0, 409, "sold_out", None)], bodies, holds, claims, layout
        )
        == 1
    )
