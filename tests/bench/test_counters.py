"""The flash-sale benchmark's judges (issue 35): ``oversold`` and ``spurious_rejections`` fed
constructed sales whose oversell and spurious answers are known."""

from __future__ import annotations

from bench.flash_sale import Attempt, oversold, spurious_rejections


def _attempt(
    buyer: int, sent: float, received: float, code: str, booking: str | None = None
) -> Attempt:
    status = {"held": 201, "sold_out": 409, "overloaded": 503}.get(code, 0)
    return Attempt(buyer, sent, received, (received - sent) * 1000, status, code, booking)


def test_oversold_counts_seats_beyond_capacity_and_below_zero() -> None:
    assert oversold(capacity=10, available=0, held=3, sold=7) == 0
    assert oversold(capacity=10, available=4, held=3, sold=3) == 0
    assert oversold(capacity=10, available=0, held=3, sold=9) == 2
    # balanced counters, yet one seat sold that was not there
    assert oversold(capacity=10, available=-1, held=0, sold=11) == 2
    assert oversold(capacity=10, available=-1, held=0, sold=10) == 1


def test_a_sold_out_answer_while_seats_were_free_is_spurious() -> None:
    """Two seats. Buyer 0 is held at t=1..2; buyer 1 is told sold out at t=3, when only one
    seat was claimed (spurious); buyer 2 is held at t=4..5; buyer 3 is told sold out at t=6,
    both seats claimed (true)."""
    attempts = [
        _attempt(0, 1.0, 2.0, "held", "b0"),
        _attempt(1, 2.5, 3.0, "sold_out"),
        _attempt(2, 4.0, 5.0, "held", "b2"),
        _attempt(3, 5.5, 6.0, "sold_out"),
    ]
    holds = [("b0", 1.5), ("b2", 4.5)]
    assert spurious_rejections(attempts, holds, capacity=2) == (1, 0)


def test_a_seat_in_flight_counts_as_claimed() -> None:
    """Buyer 1's request was sent at t=1 and committed, but its answer came late (t=9): a
    sold-out answer at t=3 is true, the seat was taken by a request already sent."""
    attempts = [
        _attempt(0, 0.5, 1.0, "held", "b0"),
        _attempt(1, 1.0, 9.0, "held", "b1"),
        _attempt(2, 2.0, 3.0, "sold_out"),
    ]
    holds = [("b0", 0.8), ("b1", 8.0)]
    assert spurious_rejections(attempts, holds, capacity=2) == (0, 0)


def test_a_hold_whose_answer_was_lost_counts_from_its_commit() -> None:
    """Buyer 1 timed out (no booking id seen): its booking row, committed at t=4, claims the
    seat from then on; a sold-out answer at t=3 was spurious, one at t=5 was not."""
    attempts = [
        _attempt(0, 0.5, 1.0, "held", "b0"),
        _attempt(1, 2.0, 12.0, "timeout"),
        _attempt(2, 2.5, 3.0, "sold_out"),
        _attempt(3, 4.5, 5.0, "sold_out"),
    ]
    holds = [("b0", 0.8), ("b1", 4.0)]
    assert spurious_rejections(attempts, holds, capacity=2) == (1, 0)


def test_unsold_seats_and_other_answers_are_not_spurious() -> None:
    attempts = [
        _attempt(0, 0.5, 1.0, "held", "b0"),
        _attempt(1, 1.5, 2.0, "overloaded"),
        _attempt(2, 2.5, 3.0, "sold_out"),
    ]
    assert spurious_rejections(attempts, [("b0", 0.8)], capacity=3) == (1, 2)
