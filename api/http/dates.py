"""``date_from`` / ``date_to`` query parameters as a range of start times: a date covers its
whole (UTC) day, a naive datetime is UTC, and ``date_to`` is inclusive."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from evently.errors import InvalidDateRange


def start_of(value: datetime | date) -> datetime:
    """The first instant ``value`` covers."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.combine(value, time.min, tzinfo=UTC)


def end_exclusive(value: datetime | date) -> datetime:
    """The first instant after ``value`` (a date: the next day's midnight, UTC)."""
    if isinstance(value, datetime):
        return start_of(value) + timedelta(microseconds=1)
    return datetime.combine(value + timedelta(days=1), time.min, tzinfo=UTC)


def starts_between(
    date_from: datetime | date | None, date_to: datetime | date | None
) -> tuple[datetime | None, datetime | None]:
    """``[starts_from, starts_before)``; 422 ``invalid_date_range`` when it is empty."""
    starts_from = start_of(date_from) if date_from is not None else None
    starts_before = end_exclusive(date_to) if date_to is not None else None
    if starts_from and starts_before and starts_from >= starts_before:
        raise InvalidDateRange("date_from must not be after date_to.")
    return starts_from, starts_before
