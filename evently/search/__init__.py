"""Event search: one interface (`SearchIndex`), a Postgres full-text backend (embedded default)
and an Elasticsearch backend. Kept import-light: backends load only when chosen."""

from evently.search.base import (
    SearchDocument,
    SearchHit,
    SearchIndex,
    SearchQuery,
    SearchResults,
    SearchSort,
    SearchUnavailable,
    Suggestion,
    SuggestionKind,
)

__all__ = [
    "SearchDocument",
    "SearchHit",
    "SearchIndex",
    "SearchQuery",
    "SearchResults",
    "SearchSort",
    "SearchUnavailable",
    "Suggestion",
    "SuggestionKind",
]
