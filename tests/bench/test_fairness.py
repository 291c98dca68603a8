"""fairness_error (bench/flash_sale.py) on rows written by the real admission statements."""

from __future__ import annotations

import pytest

from bench.flash_sale import fairness_error
from evently import waitingroom
from evently.infra.resources import Resources
from tests.support.factories import make_accounts, make_event


@pytest.mark.parametrize(
    ("batches", "expected"),
    [
        ([(0, 2), (2, 5)], 0.0),  # in join order, two admissions
        ([(2, 5), (0, 2)], 0.6),  # places 3-5 admitted before 1-2: 3 of 5 out of order
    ],
)
async def test_fairness_error_counts_admissions_out_of_join_order(
    resources: Resources, batches: list[tuple[int, int]], expected: float
) -> None:
    event = await make_event(resources, capacity=5)
    buyers = [a.user.id for a in await make_accounts(resources, 6)]
    async with resources.engine.begin() as conn:
        await waitingroom.record_joins(conn, event.id, 1, [str(b) for b in buyers])
    for before, after in batches:
        async with resources.engine.begin() as conn:
            await waitingroom.record_admitted(conn, event.id, before, after)
    async with resources.engine.connect() as conn:
        assert await fairness_error(conn, event.id) == expected
