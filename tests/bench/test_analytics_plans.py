"""The analytics queries use indexes keyed by event, checked on a throwaway database.

CI loads a smaller table (50,000 bookings) than the 1M-row run recorded in
docs/analytics-plans.md (made by ``python -m bench.analytics_plans``), with the same code, and
asserts the plans: no sequential scan of bookings or payments for a typical event.
"""

from __future__ import annotations

from bench.analytics_plans import EXPECTED_INDEXES, run
from evently.settings import Settings


async def test_analytics_queries_use_event_indexes_on_a_large_table(settings: Settings) -> None:
    assert settings.database_url
    report = await run(settings.database_url, bookings=50_000, events=200, hot_share=0.1)
    plans = {q.name: q for q in report.typical}
    for q in report.typical:
        assert "bookings" not in q.seq_scans, q.plan
        assert "payments" not in q.seq_scans, q.plan
    bookings_idx = set(EXPECTED_INDEXES["bookings"])
    for name in ("bookings_by_status", "sales_per_hour", "payments"):
        assert bookings_idx & set(plans[name].index_scans), plans[name].plan
    assert set(EXPECTED_INDEXES["payments"]) & set(plans["payments"].index_scans), plans[
        "payments"
    ].plan
    assert "ix_waitlist_event_status_created" in plans["waitlist"].index_scans or (
        "waitlist_entries" not in plans["waitlist"].seq_scans
    ), plans["waitlist"].plan
    # a typical event (~225 bookings) answers in a few ms even on a shared CI box
    assert report.typical_total_ms < 250, report.summary()
