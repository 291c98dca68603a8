"""The embedded search backend: Postgres full-text search over the ``search_documents`` table.

Ranking: documents matching more of the query's words first, then ``ts_rank`` over a weighted
tsvector (name A, venue and city B, type C, description D; English stemming, accents folded).
Suggestions: prefix matches first, then pg_trgm word similarity, which forgives a typo.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterable, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from evently.search.base import (
    ProgressCallback,
    SearchDocument,
    SearchQuery,
    SearchResults,
    SearchSort,
    Suggestion,
    query_words,
)

DEFAULT_TABLE = "search_documents"
TS_CONFIG = "evently_search"
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_FIELDS = (
    "event_id",
    "name",
    "description",
    "event_type",
    "venue_id",
    "venue_name",
    "city",
    "starts_at",
    "ends_at",
    "price",
    "currency",
    "has_seats",
)
_COLUMNS = ", ".join(_FIELDS)


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class PostgresSearchIndex:
    backend = "postgres"

    def __init__(self, engine: AsyncEngine, *, table: str = DEFAULT_TABLE) -> None:
        if not _IDENT.match(table):
            raise ValueError(f"invalid table name {table!r}")
        self.engine = engine
        self.table = table
        self._upsert_sql = text(
            f"INSERT INTO {table} ({_COLUMNS}, indexed_at) "
            f"VALUES ({', '.join(':' + f for f in _FIELDS)}, clock_timestamp()) "
            "ON CONFLICT (event_id) DO UPDATE SET "
            + ", ".join(f"{f} = EXCLUDED.{f}" for f in _FIELDS if f != "event_id")
            + ", indexed_at = EXCLUDED.indexed_at"
        )

    async def ensure(self) -> None:
        """The table comes from the Alembic migration; only check that it is there."""
        await self.ping()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text(f"SELECT 1 FROM {self.table} LIMIT 1"))

    async def refresh(self) -> None:
        """Committed writes are visible at once."""

    async def aclose(self) -> None:
        """The engine belongs to the caller."""

    async def upsert(self, doc: SearchDocument) -> None:
        await self.upsert_many([doc])

    async def upsert_many(self, docs: Sequence[SearchDocument]) -> None:
        # one row per event (the last wins): ON CONFLICT cannot touch a row twice in a statement
        rows = list({d.event_id: d.model_dump() for d in docs}.values())
        if not rows:
            return
        async with self.engine.begin() as conn:
            await conn.execute(self._upsert_sql, rows)

    async def delete(self, event_id: uuid.UUID) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                text(f"DELETE FROM {self.table} WHERE event_id = :id"), {"id": event_id}
            )

    async def reindex(
        self,
        batches: AsyncIterable[Sequence[SearchDocument]],
        on_batch: ProgressCallback | None = None,
    ) -> int:
        """In place: upsert every document, then drop the ones this pass did not write.

        A concurrent activity write lands after ``started`` too, so it is never dropped.
        """
        async with self.engine.connect() as conn:
            started = (await conn.execute(text("SELECT clock_timestamp()"))).scalar_one()
        written = 0
        async for batch in batches:
            await self.upsert_many(batch)
            written += len(batch)
            if on_batch is not None:
                on_batch(len(batch))
        async with self.engine.begin() as conn:
            await conn.execute(
                text(f"DELETE FROM {self.table} WHERE indexed_at < :started"),
                {"started": started},
            )
        return written

    async def search(self, query: SearchQuery) -> SearchResults:
        params: dict[str, Any] = {"limit": query.limit, "offset": query.offset}
        where: list[str] = []
        words = query_words(query.text)
        tsqueries = []
        for i, word in enumerate(words):
            params[f"w{i}"] = word
            tsqueries.append(f"plainto_tsquery('{TS_CONFIG}', :w{i})")
        if query.text is not None:
            if not tsqueries:  # nothing searchable in the text (punctuation only)
                return SearchResults(items=[], total=0)
            where.append(f"document @@ ({' || '.join(tsqueries)})")
        if query.city:
            params["city"] = query.city
            where.append("city_key = lower(f_unaccent(:city))")
        if query.event_type:
            params["event_type"] = query.event_type
            where.append("type_key = lower(f_unaccent(:event_type))")
        if query.date_from:
            params["date_from"] = query.date_from
            where.append("starts_at >= :date_from")
        if query.date_to:
            params["date_to"] = query.date_to
            where.append("starts_at <= :date_to")
        if query.price_max is not None:
            params["price_max"] = query.price_max
            where.append("price <= :price_max")
        if query.available_only:
            where.append("has_seats")
        if query.ends_after:
            params["ends_after"] = query.ends_after
            where.append("ends_at >= :ends_after")

        order: list[str]
        if query.sort is SearchSort.price:
            order = ["price", "starts_at", "event_id"]
        elif query.sort is SearchSort.relevance and tsqueries:
            coverage = " + ".join(f"(document @@ {q})::int" for q in tsqueries)
            rank = f"ts_rank(document, {' || '.join(tsqueries)})"
            order = [f"({coverage}) DESC", f"{rank} DESC", "starts_at", "event_id"]
        else:
            order = ["starts_at", "event_id"]

        sql = (
            f"SELECT {_COLUMNS}, count(*) OVER () AS total FROM {self.table}"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + f" ORDER BY {', '.join(order)} LIMIT :limit OFFSET :offset"
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text(sql), params)).mappings().all()
            if rows:
                total = int(rows[0]["total"])
            elif query.page > 1:  # past the last page: the window count saw no rows
                count_sql = f"SELECT count(*) FROM {self.table}" + (
                    f" WHERE {' AND '.join(where)}" if where else ""
                )
                total = int((await conn.execute(text(count_sql), params)).scalar_one())
            else:
                total = 0
        items = [SearchDocument.model_validate({f: row[f] for f in _FIELDS}) for row in rows]
        return SearchResults(items=items, total=total)

    async def suggest(self, prefix: str, limit: int = 10) -> list[Suggestion]:
        words = query_words(prefix)
        if not words:
            return []
        typed = " ".join(words)  # letters, digits and "_" only: escape "_" for LIKE
        params = {"q": typed, "p": _like_escape(typed), "limit": limit}
        async with self.engine.begin() as conn:
            # the planner underrates word_similarity's cost: a multi-word prefix ("midnight ja")
            # got a sequential scan at ~90 ms instead of the trigram indexes at ~15 ms, and
            # starting parallel workers cost more than the whole query
            await conn.execute(
                text(
                    "SELECT set_config('enable_seqscan', 'off', true),"
                    " set_config('max_parallel_workers_per_gather', '0', true)"
                )
            )
            rows = (await conn.execute(text(self._suggest_sql()), params)).all()
        return [Suggestion(text=r.text, kind=r.kind) for r in rows]

    def _suggest_sql(self) -> str:
        """One statement; normalising the input in SQL (the same f_unaccent as the keys) keeps
        the trigram indexes usable. ``<%`` is pg_trgm word similarity at or above
        ``pg_trgm.word_similarity_threshold`` (default 0.6: about one typo in a short word)."""
        q = "lower(f_unaccent(:q))"
        prefix = "lower(f_unaccent(:p)) || '%'"
        word_prefix = "'% ' || lower(f_unaccent(:p)) || '%'"
        parts = [
            # distinct first: a city shared by thousands of events is scored once
            f"SELECT DISTINCT '{kind}' AS kind, {column} AS text, {key} AS key FROM {self.table} "
            f"WHERE {key} LIKE {prefix} OR {key} LIKE {word_prefix} OR {q} <% {key}"
            for kind, column, key in (
                ("event", "name", "name_key"),
                ("venue", "venue_name", "venue_key"),
                ("city", "city", "city_key"),
            )
        ]
        # a whole-string prefix beats a word prefix beats a merely similar (typo) match
        score = (
            f"(key LIKE {prefix})::int * 2 + (key LIKE {word_prefix})::int"
            f" + word_similarity({q}, key)"
        )
        return (
            f"SELECT kind, text, {score} AS score FROM ("
            + " UNION ALL ".join(parts)
            + ") s ORDER BY score DESC, length(text), text, kind LIMIT :limit"
        )
