"""The production search backend: Elasticsearch through the official async client.

Request bodies are built by the pure functions below (unit-tested as exact JSON); the class
only sends them. The app owns the index: an explicit mapping under a versioned name
(``<alias>-v1``) behind the alias the app reads and writes, so a mapping change is a reindex into
a fresh index and one atomic alias swap.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from elastic_transport import HttpxAsyncHttpNode, TransportError
from elasticsearch import ApiError, AsyncElasticsearch, BadRequestError, NotFoundError
from elasticsearch.helpers import async_bulk

from evently.search.base import (
    ProgressCallback,
    SearchDocument,
    SearchQuery,
    SearchResults,
    SearchSort,
    SearchUnavailable,
    Suggestion,
    SuggestionKind,
    query_words,
)

MAPPING_VERSION = 1
MAX_SUGGEST_INPUTS = 6  # a name is suggested from each of its first words on

TEXT_FIELDS = ["name^4", "venue_name^2", "city.text^2", "event_type.text^1.5", "description"]
SUGGEST_FIELDS: dict[SuggestionKind, tuple[str, str]] = {
    # suggester name -> (completion field, source field shown to the user)
    "event": ("name_suggest", "name"),
    "venue": ("venue_suggest", "venue_name"),
    "city": ("city_suggest", "city"),
}


def index_settings() -> dict[str, Any]:
    return {
        "analysis": {
            "filter": {
                "evently_possessive": {"type": "stemmer", "language": "possessive_english"},
                "evently_stop": {"type": "stop", "stopwords": "_english_"},
                "evently_stemmer": {"type": "stemmer", "language": "english"},
            },
            "analyzer": {
                # full text: "Cafés" finds "cafe", "concerts" finds "concert"
                "evently_text": {
                    "type": "custom",
                    "tokenizer": "standard",
                    "filter": [
                        "evently_possessive",
                        "lowercase",
                        "asciifolding",
                        "evently_stop",
                        "evently_stemmer",
                    ],
                },
                # completion: no stemming or stop words, so a typed prefix matches as typed
                "evently_suggest": {
                    "type": "custom",
                    "tokenizer": "standard",
                    "filter": ["lowercase", "asciifolding"],
                },
            },
            # filters on city/type ignore case and accents: "bergen" = "Bergen", "Zurich" = "Zürich"
            "normalizer": {
                "evently_keyword": {"type": "custom", "filter": ["lowercase", "asciifolding"]}
            },
        }
    }


def index_mappings() -> dict[str, Any]:
    text = {"type": "text", "analyzer": "evently_text"}
    completion = {"type": "completion", "analyzer": "evently_suggest"}
    keyword_with_text = {
        "type": "keyword",
        "normalizer": "evently_keyword",
        "fields": {"text": text},
    }
    return {
        "dynamic": "strict",
        "properties": {
            "event_id": {"type": "keyword"},
            "name": text,
            "description": text,
            "event_type": keyword_with_text,
            "venue_id": {"type": "keyword"},
            "venue_name": text,
            "city": keyword_with_text,
            "starts_at": {"type": "date"},
            "ends_at": {"type": "date"},
            "price": {"type": "scaled_float", "scaling_factor": 100},
            "currency": {"type": "keyword"},
            "has_seats": {"type": "boolean"},
            "name_suggest": completion,
            "venue_suggest": completion,
            "city_suggest": completion,
        },
    }


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def completion_inputs(value: str) -> list[str]:
    """The text and each of its word suffixes: "Bergen Jazz Festival" completes from "jazz" too."""
    words = value.split()
    return [" ".join(words[i:]) for i in range(min(len(words), MAX_SUGGEST_INPUTS))] or [value]


def document_source(doc: SearchDocument) -> dict[str, Any]:
    return {
        "event_id": str(doc.event_id),
        "name": doc.name,
        "description": doc.description,
        "event_type": doc.event_type,
        "venue_id": str(doc.venue_id),
        "venue_name": doc.venue_name,
        "city": doc.city,
        "starts_at": _iso(doc.starts_at),
        "ends_at": _iso(doc.ends_at),
        "price": str(doc.price),  # a string keeps the exact decimal in _source
        "currency": doc.currency,
        "has_seats": doc.has_seats,
        "name_suggest": {"input": completion_inputs(doc.name)},
        "venue_suggest": {"input": completion_inputs(doc.venue_name)},
        "city_suggest": {"input": completion_inputs(doc.city)},
    }


def document_from_source(source: Mapping[str, Any]) -> SearchDocument:
    return SearchDocument(
        event_id=uuid.UUID(source["event_id"]),
        name=source["name"],
        description=source["description"],
        event_type=source["event_type"],
        venue_id=uuid.UUID(source["venue_id"]),
        venue_name=source["venue_name"],
        city=source["city"],
        starts_at=datetime.fromisoformat(source["starts_at"]),
        ends_at=datetime.fromisoformat(source["ends_at"]),
        price=Decimal(str(source["price"])),
        currency=source["currency"],
        has_seats=source["has_seats"],
    )


def search_body(query: SearchQuery) -> dict[str, Any]:
    """The whole ``_search`` request body for a query (filters never affect the score)."""
    filters: list[dict[str, Any]] = []
    if query.city:
        filters.append({"term": {"city": query.city}})
    if query.event_type:
        filters.append({"term": {"event_type": query.event_type}})
    starts: dict[str, str] = {}
    if query.date_from:
        starts["gte"] = _iso(query.date_from)
    if query.date_to:
        starts["lte"] = _iso(query.date_to)
    if starts:
        filters.append({"range": {"starts_at": starts}})
    if query.price_max is not None:
        filters.append({"range": {"price": {"lte": str(query.price_max)}}})
    if query.available_only:
        filters.append({"term": {"has_seats": True}})
    if query.ends_after:
        filters.append({"range": {"ends_at": {"gte": _iso(query.ends_after)}}})

    words = query_words(query.text)
    must: dict[str, Any]
    if words:
        # cross_fields: the words may be spread over fields ("jazz" in the name, "bergen" in the
        # city); a document matching more of them scores higher
        must = {
            "multi_match": {
                "query": " ".join(words),
                "type": "cross_fields",
                "fields": TEXT_FIELDS,
                "operator": "or",
            }
        }
    else:
        must = {"match_all": {}}

    sort: list[dict[str, str]]
    if query.sort is SearchSort.price:
        sort = [{"price": "asc"}, {"starts_at": "asc"}, {"event_id": "asc"}]
    elif query.sort is SearchSort.relevance and words:
        sort = [{"_score": "desc"}, {"starts_at": "asc"}, {"event_id": "asc"}]
    else:
        sort = [{"starts_at": "asc"}, {"event_id": "asc"}]
    return {
        "query": {"bool": {"must": [must], "filter": filters}},
        "sort": sort,
        "from": query.offset,
        "size": query.limit,
        "track_total_hits": True,
    }


def suggest_body(prefix: str, limit: int) -> dict[str, Any]:
    """Completion suggesters on names, venues and cities; fuzzy, so one typo still completes."""
    text = " ".join(query_words(prefix))
    return {
        "_source": sorted({source for _, source in SUGGEST_FIELDS.values()}),
        "suggest": {
            kind: {
                "prefix": text,
                "completion": {
                    "field": field,
                    # names may share a suffix input ("Jazz Festival"): dedupe those here instead
                    "size": limit * 3 if kind == "event" else limit,
                    "skip_duplicates": kind != "event",
                    "fuzzy": {"fuzziness": "AUTO"},
                },
            }
            for kind, (field, _) in SUGGEST_FIELDS.items()
        },
    }


def alias_swap_actions(alias: str, new: str, old: Sequence[str]) -> list[dict[str, Any]]:
    """One ``_aliases`` request: applied atomically, so readers switch from old to new at once."""
    actions: list[dict[str, Any]] = [{"remove": {"index": name, "alias": alias}} for name in old]
    actions.append({"add": {"index": new, "alias": alias, "is_write_index": True}})
    return actions


def parse_search_response(response: Mapping[str, Any]) -> SearchResults:
    hits = response["hits"]
    return SearchResults(
        items=[document_from_source(h["_source"]) for h in hits["hits"]],
        total=int(hits["total"]["value"]),
    )


def parse_suggest_response(response: Mapping[str, Any], limit: int) -> list[Suggestion]:
    scored: list[tuple[float, Suggestion]] = []
    for kind, (_, source_field) in SUGGEST_FIELDS.items():
        for entry in response.get("suggest", {}).get(kind, []):
            for option in entry.get("options", []):
                text = option["_source"][source_field]
                scored.append((float(option.get("_score", 0.0)), Suggestion(text=text, kind=kind)))
    scored.sort(key=lambda s: (-s[0], len(s[1].text), s[1].text, s[1].kind))
    out: list[Suggestion] = []
    for _, suggestion in scored:
        if suggestion not in out:
            out.append(suggestion)
        if len(out) == limit:
            break
    return out


@contextlib.asynccontextmanager
async def _reads() -> AsyncIterator[None]:
    """A search the cluster cannot serve now becomes SearchUnavailable (the API answers 503)."""
    try:
        yield
    except TransportError as exc:  # connection refused, timeout
        raise SearchUnavailable(f"Elasticsearch unreachable: {exc}") from exc
    except ApiError as exc:
        if exc.meta.status >= 500 or exc.meta.status == 429:
            raise SearchUnavailable(f"Elasticsearch error {exc.meta.status}") from exc
        raise


def make_client(url: str) -> AsyncElasticsearch:
    # httpx transport: already a dependency (the default async transport would need aiohttp)
    return AsyncElasticsearch(
        url, node_class=HttpxAsyncHttpNode, request_timeout=10, max_retries=2, retry_on_timeout=True
    )


class ElasticsearchIndex:
    backend = "elasticsearch"

    def __init__(self, client: AsyncElasticsearch, alias: str) -> None:
        self.es = client
        self.alias = alias
        self._ensured = False

    @property
    def initial_index(self) -> str:
        return f"{self.alias}-v{MAPPING_VERSION}"

    def new_index_name(self) -> str:
        return f"{self.alias}-v{MAPPING_VERSION}-{datetime.now(UTC):%Y%m%d%H%M%S%f}"

    async def ensure(self) -> None:
        """Create ``<alias>-v1`` with the mapping and the alias, unless the alias exists."""
        if self._ensured:
            return
        if not await self.es.indices.exists_alias(name=self.alias):
            try:
                await self.es.indices.create(
                    index=self.initial_index,
                    settings=index_settings(),
                    mappings=index_mappings(),
                    aliases={self.alias: {"is_write_index": True}},
                )
            except BadRequestError as exc:
                if exc.error != "resource_already_exists_exception":
                    raise
                # another process won the race, or the alias was removed: (re)attach it
                if not await self.es.indices.exists_alias(name=self.alias):
                    await self.es.indices.put_alias(index=self.initial_index, name=self.alias)
        self._ensured = True

    async def upsert(self, doc: SearchDocument) -> None:
        await self.ensure()
        # require_alias: never let a write auto-create a concrete index with a guessed mapping
        await self.es.index(
            index=self.alias,
            id=str(doc.event_id),
            document=document_source(doc),
            require_alias=True,
        )

    async def upsert_many(self, docs: Sequence[SearchDocument]) -> None:
        if not docs:
            return
        await self.ensure()
        actions = [
            {"_index": self.alias, "_id": str(d.event_id), "_source": document_source(d)}
            for d in docs
        ]
        await async_bulk(self.es, actions, raise_on_error=True, require_alias=True)

    async def delete(self, event_id: uuid.UUID) -> None:
        await self.ensure()
        with contextlib.suppress(NotFoundError):  # already gone: deleting is idempotent
            await self.es.delete(index=self.alias, id=str(event_id))

    async def search(self, query: SearchQuery) -> SearchResults:
        if query.text is not None and not query_words(query.text):
            return SearchResults(items=[], total=0)
        async with _reads():
            await self.ensure()
            response = await self.es.search(index=self.alias, body=search_body(query))
        return parse_search_response(response.body)

    async def suggest(self, prefix: str, limit: int = 10) -> list[Suggestion]:
        if not query_words(prefix):
            return []
        async with _reads():
            await self.ensure()
            response = await self.es.search(index=self.alias, body=suggest_body(prefix, limit))
        return parse_suggest_response(response.body, limit)

    async def refresh(self) -> None:
        await self.ensure()
        await self.es.indices.refresh(index=self.alias)

    async def ping(self) -> None:
        if not await self.es.ping():
            raise ConnectionError("Elasticsearch did not answer a ping")

    async def aclose(self) -> None:
        await self.es.close()

    async def reindex(
        self,
        batches: AsyncIterable[Sequence[SearchDocument]],
        on_batch: ProgressCallback | None = None,
    ) -> int:
        """Build a fresh index (no refreshes while loading), then swap the alias atomically and
        drop the old index. Searches see the old index until the swap, never a half-built one."""
        new = self.new_index_name()
        await self.es.indices.create(
            index=new,
            settings={**index_settings(), "refresh_interval": "-1"},
            mappings=index_mappings(),
        )
        written = 0
        try:
            async for batch in batches:
                actions = [
                    {"_index": new, "_id": str(d.event_id), "_source": document_source(d)}
                    for d in batch
                ]
                await async_bulk(self.es, actions, raise_on_error=True, max_retries=3)
                written += len(batch)
                if on_batch is not None:
                    on_batch(len(batch))
            await self.es.indices.put_settings(index=new, settings={"refresh_interval": None})
            await self.es.indices.refresh(index=new)
            old: list[str] = []
            if await self.es.indices.exists_alias(name=self.alias):
                old = list((await self.es.indices.get_alias(name=self.alias)).body)
            await self.es.indices.update_aliases(actions=alias_swap_actions(self.alias, new, old))
        except BaseException:
            await self.es.indices.delete(index=new, ignore_unavailable=True)
            raise
        for name in old:
            await self.es.indices.delete(index=name, ignore_unavailable=True)
        self._ensured = True
        return written
