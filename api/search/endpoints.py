"""GET /search and GET /search/suggestions: published events only, from the search index."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.deps import ResourcesDep
from api.http.links import PageLinksDep
from api.problems import problem_responses
from api.search.schemas import (
    SearchItem,
    SearchPage,
    SearchParams,
    SuggestionItem,
    Suggestions,
    SuggestParams,
)
from evently.search.base import MAX_RESULT_WINDOW, SearchIndex, SearchUnavailable

router = APIRouter(prefix="/search", tags=["search"])


def get_search_index(res: ResourcesDep) -> SearchIndex:
    return res.search


SearchIndexDep = Annotated[SearchIndex, Depends(get_search_index)]
_UNAVAILABLE = problem_responses(SearchUnavailable)


@router.get("", responses=_UNAVAILABLE)
async def search(
    index: SearchIndexDep, params: Annotated[SearchParams, Query()], links: PageLinksDep
) -> SearchPage:
    """Full-text search over published events that have not ended, with filters and sorting."""
    results = await index.search(params.to_query(datetime.now(UTC)))
    links.set(params.page, params.limit, results.total, max_page=MAX_RESULT_WINDOW // params.limit)
    return SearchPage(
        items=[SearchItem.of(d) for d in results.items],
        total=results.total,
        page=params.page,
        limit=params.limit,
    )


@router.get("/suggestions", responses=_UNAVAILABLE)
async def suggestions(
    index: SearchIndexDep, params: Annotated[SuggestParams, Query()]
) -> Suggestions:
    """Completions for a typed prefix: event names, venues and cities, forgiving a typo."""
    found = await index.suggest(params.q, params.limit)
    return Suggestions(items=[SuggestionItem.of(s) for s in found])
