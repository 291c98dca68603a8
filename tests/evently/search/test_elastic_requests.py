"""The exact JSON the Elasticsearch backend sends, checked without a server.

These pin the request bodies (mapping, query DSL per filter/sort/page, suggesters); the
contract suite checks their behaviour whenever a real cluster is configured.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from evently.search.base import SearchDocument, SearchQuery, SearchSort
from evently.search.elastic import (
    ElasticsearchIndex,
    alias_swap_actions,
    completion_inputs,
    document_from_source,
    document_source,
    index_mappings,
    index_settings,
    make_client,
    parse_search_response,
    parse_suggest_response,
    search_body,
    suggest_body,
)

TEXT_FIELDS = ["name^4", "venue_name^2", "city.text^2", "event_type.text^1.5", "description"]
EVENT_ID = uuid.UUID("00000000-0000-0000-0000-0000000000e1")
VENUE_ID = uuid.UUID("00000000-0000-0000-0000-0000000000f1")
STARTS = datetime(2026, 12, 1, 19, 0, tzinfo=timezone(timedelta(hours=1)))


def test_index_settings_define_folding_analyzers_and_a_keyword_normalizer() -> None:
    assert index_settings() == {
        "analysis": {
            "filter": {
                "evently_possessive": {"type": "stemmer", "language": "possessive_english"},
                "evently_stop": {"type": "stop", "stopwords": "_english_"},
                "evently_stemmer": {"type": "stemmer", "language": "english"},
            },
            "analyzer": {
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
                "evently_suggest": {
                    "type": "custom",
                    "tokenizer": "standard",
                    "filter": ["lowercase", "asciifolding"],
                },
            },
            "normalizer": {
                "evently_keyword": {"type": "custom", "filter": ["lowercase", "asciifolding"]}
            },
        }
    }


def test_mapping_is_explicit_and_strict() -> None:
    text = {"type": "text", "analyzer": "evently_text"}
    folded_keyword = {"type": "keyword", "normalizer": "evently_keyword", "fields": {"text": text}}
    completion = {"type": "completion", "analyzer": "evently_suggest"}
    assert index_mappings() == {
        "dynamic": "strict",
        "properties": {
            "event_id": {"type": "keyword"},
            "name": text,
            "description": text,
            "event_type": folded_keyword,
            "venue_id": {"type": "keyword"},
            "venue_name": text,
            "city": folded_keyword,
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


def _doc() -> SearchDocument:
    return SearchDocument(
        event_id=EVENT_ID,
        name="Bergen Jazz Festival",
        description="Late sessions",
        event_type="concert",
        venue_id=VENUE_ID,
        venue_name="Grieghallen",
        city="Bergen",
        starts_at=STARTS,
        ends_at=STARTS + timedelta(hours=3),
        price=Decimal("25.50"),
        currency="NOK",
        has_seats=True,
    )


def test_document_source_uses_utc_dates_string_prices_and_completion_inputs() -> None:
    source = document_source(_doc())
    assert source == {
        "event_id": str(EVENT_ID),
        "name": "Bergen Jazz Festival",
        "description": "Late sessions",
        "event_type": "concert",
        "venue_id": str(VENUE_ID),
        "venue_name": "Grieghallen",
        "city": "Bergen",
        "starts_at": "2026-12-01T18:00:00+00:00",
        "ends_at": "2026-12-01T21:00:00+00:00",
        "price": "25.50",
        "currency": "NOK",
        "has_seats": True,
        "name_suggest": {"input": ["Bergen Jazz Festival", "Jazz Festival", "Festival"]},
        "venue_suggest": {"input": ["Grieghallen"]},
        "city_suggest": {"input": ["Bergen"]},
    }
    assert document_from_source(source) == _doc()


def test_completion_inputs_are_capped_word_suffixes() -> None:
    assert completion_inputs("A B C D E F G H") == [
        "A B C D E F G H",
        "B C D E F G H",
        "C D E F G H",
        "D E F G H",
        "E F G H",
        "F G H",
    ]
    assert completion_inputs("") == [""]


def test_text_query_is_a_cross_fields_match_sorted_by_score() -> None:
    body = search_body(SearchQuery(text="jazz, in Bergen!"))
    assert body == {
        "query": {
            "bool": {
                "must": [
                    {
                        "multi_match": {
                            "query": "jazz in Bergen",
                            "type": "cross_fields",
                            "fields": TEXT_FIELDS,
                            "operator": "or",
                        }
                    }
                ],
                "filter": [],
            }
        },
        "sort": [{"_score": "desc"}, {"starts_at": "asc"}, {"event_id": "asc"}],
        "from": 0,
        "size": 20,
        "track_total_hits": True,
    }


def test_no_text_matches_all_in_date_order() -> None:
    body = search_body(SearchQuery())
    assert body["query"] == {"bool": {"must": [{"match_all": {}}], "filter": []}}
    assert body["sort"] == [{"starts_at": "asc"}, {"event_id": "asc"}]


def test_each_filter_becomes_a_non_scoring_filter_clause() -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    query = SearchQuery(
        city="Zürich",
        event_type="Opera",
        date_from=datetime(2026, 12, 1, tzinfo=UTC),
        date_to=datetime(2026, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=2))),
        price_max=Decimal("49.90"),
        available_only=True,
        ends_after=now,
    )
    assert search_body(query)["query"]["bool"]["filter"] == [
        {"term": {"city": "Zürich"}},
        {"term": {"event_type": "Opera"}},
        {
            "range": {
                "starts_at": {
                    "gte": "2026-12-01T00:00:00+00:00",
                    "lte": "2026-12-31T21:59:59+00:00",
                }
            }
        },
        {"range": {"price": {"lte": "49.90"}}},
        {"term": {"has_seats": True}},
        {"range": {"ends_at": {"gte": "2026-11-22T12:00:00+00:00"}}},
    ]


def test_single_bound_date_ranges() -> None:
    day = datetime(2026, 12, 1, tzinfo=UTC)
    assert search_body(SearchQuery(date_from=day))["query"]["bool"]["filter"] == [
        {"range": {"starts_at": {"gte": "2026-12-01T00:00:00+00:00"}}}
    ]
    assert search_body(SearchQuery(date_to=day))["query"]["bool"]["filter"] == [
        {"range": {"starts_at": {"lte": "2026-12-01T00:00:00+00:00"}}}
    ]


def test_sorts_and_pagination() -> None:
    assert search_body(SearchQuery(text="jazz", sort=SearchSort.price))["sort"] == [
        {"price": "asc"},
        {"starts_at": "asc"},
        {"event_id": "asc"},
    ]
    assert search_body(SearchQuery(text="jazz", sort=SearchSort.date))["sort"] == [
        {"starts_at": "asc"},
        {"event_id": "asc"},
    ]
    body = search_body(SearchQuery(page=3, limit=25))
    assert (body["from"], body["size"]) == (50, 25)


def test_suggest_body_has_one_fuzzy_completion_suggester_per_kind() -> None:
    assert suggest_body("Jazz fe", 5) == {
        "_source": ["city", "name", "venue_name"],
        "suggest": {
            "event": {
                "prefix": "Jazz fe",
                "completion": {
                    "field": "name_suggest",
                    "size": 15,
                    "skip_duplicates": False,
                    "fuzzy": {"fuzziness": "AUTO"},
                },
            },
            "venue": {
                "prefix": "Jazz fe",
                "completion": {
                    "field": "venue_suggest",
                    "size": 5,
                    "skip_duplicates": True,
                    "fuzzy": {"fuzziness": "AUTO"},
                },
            },
            "city": {
                "prefix": "Jazz fe",
                "completion": {
                    "field": "city_suggest",
                    "size": 5,
                    "skip_duplicates": True,
                    "fuzzy": {"fuzziness": "AUTO"},
                },
            },
        },
    }


def test_responses_are_read_as_documented() -> None:
    # the response shapes of the search API docs (hits.total.value, suggest.<name>[].options[])
    source = document_source(_doc())
    results = parse_search_response(
        {"hits": {"total": {"value": 42, "relation": "eq"}, "hits": [{"_source": source}]}}
    )
    assert results.total == 42
    assert results.items == [_doc()]

    def option(score: float, **src: str) -> dict[str, object]:
        return {"text": "x", "_score": score, "_source": src}

    suggestions = parse_suggest_response(
        {
            "suggest": {
                "event": [
                    {
                        "options": [
                            option(3.0, name="Bergen Jazz Festival"),
                            option(3.0, name="Bergen Jazz Festival"),  # two suffix inputs
                        ]
                    }
                ],
                "venue": [{"options": [option(1.0, venue_name="Grieghallen")]}],
                "city": [{"options": [option(5.0, city="Bergen")]}],
            }
        },
        limit=2,
    )
    assert [(s.text, s.kind) for s in suggestions] == [
        ("Bergen", "city"),
        ("Bergen Jazz Festival", "event"),
    ]


async def test_index_names_are_versioned_behind_the_alias() -> None:
    index = ElasticsearchIndex(make_client("http://127.0.0.1:9"), "evently-events")
    assert index.initial_index == "evently-events-v1"
    assert index.new_index_name().startswith("evently-events-v1-")
    assert index.new_index_name() != index.initial_index
    await index.aclose()


def test_alias_swap_is_one_atomic_request_removing_old_and_adding_new() -> None:
    assert alias_swap_actions("events", "events-v1-2", ["events-v1"]) == [
        {"remove": {"index": "events-v1", "alias": "events"}},
        {"add": {"index": "events-v1-2", "alias": "events", "is_write_index": True}},
    ]
    assert alias_swap_actions("a", "a-v1", []) == [
        {"add": {"index": "a-v1", "alias": "a", "is_write_index": True}}
    ]
