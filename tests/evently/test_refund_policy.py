"""The refund rule in the core (evently/refund_policy.py): the buyer's deadline to the second,
who may refund in each mode, the stored shape and the buyer's sentence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from evently import refund_policy
from evently.refund_policy import RefundNone, RefundOrganizerOnly, RefundUntil

STARTS = datetime(2027, 6, 1, 20, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def test_until_allows_the_buyer_up_to_the_deadline_included() -> None:
    policy = refund_policy.parse({"mode": "until", "hours_before_start": 48})
    deadline = STARTS - timedelta(hours=48)
    assert refund_policy.buyer_deadline(policy, STARTS) == deadline
    assert refund_policy.buyer_may_refund(policy, STARTS, deadline - SECOND)
    assert refund_policy.buyer_may_refund(policy, STARTS, deadline)
    assert not refund_policy.buyer_may_refund(policy, STARTS, deadline + SECOND)
    assert refund_policy.organizer_may_refund(policy)


def test_the_default_is_until_the_start() -> None:
    policy = refund_policy.parse(None)
    assert policy == RefundUntil(mode="until", hours_before_start=0)
    assert refund_policy.buyer_may_refund(policy, STARTS, STARTS - SECOND)
    assert not refund_policy.buyer_may_refund(policy, STARTS, STARTS + SECOND)
    assert refund_policy.to_json(None) == {"mode": "until", "hours_before_start": 0}
    assert refund_policy.to_json({"mode": "until"}) == {"mode": "until", "hours_before_start": 0}


@pytest.mark.parametrize("now", [STARTS - timedelta(days=300), STARTS + timedelta(days=1)])
def test_organizer_only_and_none(now: datetime) -> None:
    only, nothing = RefundOrganizerOnly(mode="organizer_only"), RefundNone(mode="none")
    assert not refund_policy.buyer_may_refund(only, STARTS, now)
    assert refund_policy.organizer_may_refund(only)
    assert not refund_policy.buyer_may_refund(nothing, STARTS, now)
    assert not refund_policy.organizer_may_refund(nothing)


@pytest.mark.parametrize(
    "bad",
    [
        {"mode": "sometimes"},
        {"mode": "until", "hours_before_start": -1},
        {"mode": "until", "hours_before_start": "48"},
        {"mode": "until", "hours_before_start": 10**6},
        {"mode": "organizer_only", "hours_before_start": 1},
        {"hours_before_start": 1},
    ],
)
def test_bad_shapes_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        refund_policy.parse(bad)


def test_the_buyers_sentence() -> None:
    assert (
        refund_policy.describe(RefundUntil(mode="until", hours_before_start=48))
        == "Refunds: until 48 h before the start"
    )
    assert refund_policy.describe(RefundUntil(mode="until")) == (
        "Refunds: until the start of the event"
    )
    assert refund_policy.describe(RefundOrganizerOnly(mode="organizer_only")) == (
        "Refunds: only by the organizer"
    )
    assert refund_policy.describe(RefundNone(mode="none")) == "Refunds: none"
