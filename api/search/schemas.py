"""Query parameters and responses of the search endpoints."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from evently.search.base import (
    MAX_RESULT_WINDOW,
    SearchDocument,
    SearchQuery,
    SearchSort,
    Suggestion,
    SuggestionKind,
)

MIN_YEAR, MAX_YEAR = 1970, 2999


def _printable(value: str) -> str:
    """No control characters (NUL would even break Postgres); surrounding blanks ignored."""
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValueError("must not contain control characters")
    return value.strip()


def _day_or_instant(value: object) -> object:
    """A bare day (2026-12-01) means the whole day for date_to; anything else is an instant."""
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass  # let the datetime/date validation report it
    return value


def _sane_year(value: date) -> date:
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"year must be between {MIN_YEAR} and {MAX_YEAR}")
    return value


Text = Annotated[str, AfterValidator(_printable)]
# a day ("2026-12-01": the whole day) or an instant ("2026-12-01T18:00:00+01:00"; naive = UTC)
DateOrTime = Annotated[
    datetime | date, BeforeValidator(_day_or_instant), AfterValidator(_sane_year)
]


def _start(value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.combine(value, time.min, UTC)


def _end(value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.combine(value, time.max, UTC)


class SearchParams(BaseModel):
    q: Text | None = Field(None, max_length=200, description="free text: name, venue, city, type")
    city: Text | None = Field(None, min_length=1, max_length=120)
    type: Text | None = Field(None, min_length=1, max_length=50, description="event type")
    date_from: DateOrTime | None = Field(None, description="starts at or after (a day or instant)")
    date_to: DateOrTime | None = Field(None, description="starts at or before (a day: inclusive)")
    price_max: Decimal | None = Field(None, ge=0, max_digits=12, decimal_places=2)
    available_only: bool = Field(False, description="only events with seats left")
    sort: SearchSort = SearchSort.relevance
    page: int = Field(1, ge=1)
    limit: int = Field(20, ge=1, le=100)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.date_from and self.date_to and _start(self.date_from) > _end(self.date_to):
            raise ValueError("date_from must not be after date_to")
        if self.page * self.limit > MAX_RESULT_WINDOW:
            raise ValueError(f"page * limit must not exceed {MAX_RESULT_WINDOW}; narrow the search")
        return self

    def to_query(self, now: datetime) -> SearchQuery:
        return SearchQuery(
            text=self.q or None,
            city=self.city or None,
            event_type=self.type or None,
            date_from=_start(self.date_from) if self.date_from else None,
            date_to=_end(self.date_to) if self.date_to else None,
            price_max=self.price_max,
            available_only=self.available_only,
            ends_after=now,
            sort=self.sort,
            page=self.page,
            limit=self.limit,
        )


class SuggestParams(BaseModel):
    q: Text = Field(min_length=1, max_length=100, description="what the user typed so far")
    limit: int = Field(8, ge=1, le=20)


class SearchVenue(BaseModel):
    id: uuid.UUID
    name: str
    city: str


class SearchItem(BaseModel):
    model_config = ConfigDict(json_schema_extra={"description": "a published event"})

    id: uuid.UUID
    name: str
    description: str
    event_type: str
    starts_at: datetime
    ends_at: datetime
    price: Decimal
    currency: str
    has_seats: bool = Field(description="false when sold out (seats may return from holds)")
    venue: SearchVenue

    @classmethod
    def of(cls, doc: SearchDocument) -> SearchItem:
        return cls(
            id=doc.event_id,
            name=doc.name,
            description=doc.description,
            event_type=doc.event_type,
            starts_at=doc.starts_at,
            ends_at=doc.ends_at,
            price=doc.price,
            currency=doc.currency,
            has_seats=doc.has_seats,
            venue=SearchVenue(id=doc.venue_id, name=doc.venue_name, city=doc.city),
        )


class SearchPage(BaseModel):
    items: list[SearchItem]
    total: int
    page: int
    limit: int


class SuggestionItem(BaseModel):
    text: str
    kind: SuggestionKind

    @classmethod
    def of(cls, s: Suggestion) -> SuggestionItem:
        return cls(text=s.text, kind=s.kind)


class Suggestions(BaseModel):
    items: list[SuggestionItem]
