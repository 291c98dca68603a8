"""The search contract every backend implements, and the shapes that cross it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, Callable, Sequence
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal, Protocol, runtime_checkable

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from evently import errors

MAX_RESULT_WINDOW = 10_000  # deepest hit a page may reach (Elasticsearch's default window)
MAX_QUERY_WORDS = 12


class SearchSort(StrEnum):
    relevance = "relevance"  # best match first (date order when there is no text)
    date = "date"  # soonest first
    price = "price"  # cheapest first


SuggestionKind = Literal["event", "venue", "city"]


class SearchDocument(BaseModel):
    """One published event as the index sees it. ``has_seats`` is the sold-out flag."""

    model_config = ConfigDict(frozen=True)

    event_id: uuid.UUID
    name: str
    description: str = ""
    event_type: str
    venue_id: uuid.UUID
    venue_name: str
    city: str
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    price: Decimal
    currency: str
    has_seats: bool


class SearchQuery(BaseModel):
    """Backend-neutral query. Date bounds are inclusive and apply to ``starts_at``."""

    model_config = ConfigDict(frozen=True)

    text: str | None = None
    city: str | None = None
    event_type: str | None = None
    date_from: AwareDatetime | None = None
    date_to: AwareDatetime | None = None
    price_max: Decimal | None = None
    available_only: bool = False
    ends_after: AwareDatetime | None = Field(
        None, description="hide events that ended before this instant (the API passes now)"
    )
    sort: SearchSort = SearchSort.relevance
    page: int = Field(1, ge=1)
    limit: int = Field(20, ge=1, le=100)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


SearchHit = SearchDocument


class SearchResults(BaseModel):
    items: list[SearchHit]
    total: int


class Suggestion(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str
    kind: SuggestionKind


ProgressCallback = Callable[[int], None]


class SearchUnavailable(errors.SearchUnavailable):
    """The search backend cannot serve now (503 ``search_unavailable``, retry shortly)."""

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, retry_after=2)


@runtime_checkable
class SearchIndex(Protocol):
    """What the API, the index-write activity and the CLI need from a search backend.

    Writes are idempotent (keyed by event id); ``refresh`` makes earlier writes visible to
    searches (a no-op where writes are visible at once).
    """

    backend: str

    async def ensure(self) -> None:
        """Create the index (and alias) if missing. Safe to call any number of times."""

    async def upsert(self, doc: SearchDocument) -> None: ...

    async def upsert_many(self, docs: Sequence[SearchDocument]) -> None: ...

    async def delete(self, event_id: uuid.UUID) -> None:
        """Remove the event's document; deleting a missing document is not an error."""

    async def search(self, query: SearchQuery) -> SearchResults: ...

    async def suggest(self, prefix: str, limit: int = 10) -> list[Suggestion]: ...

    async def reindex(
        self,
        batches: AsyncIterable[Sequence[SearchDocument]],
        on_batch: ProgressCallback | None = None,
    ) -> int:
        """Make the index hold exactly the given documents; returns how many were written."""

    async def refresh(self) -> None: ...

    async def ping(self) -> None:
        """Raise when the backend is unreachable or its index is missing."""

    async def aclose(self) -> None: ...


def query_words(text: str | None) -> list[str]:
    """The words of a free-text query (letters/digits runs), capped, as both backends see them."""
    import re

    if not text:
        return []
    return re.findall(r"\w+", text)[:MAX_QUERY_WORDS]


def utc(value: datetime) -> datetime:
    from datetime import UTC

    return value.astimezone(UTC)
