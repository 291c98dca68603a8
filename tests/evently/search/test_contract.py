"""One contract, every backend: what the search API relies on from a SearchIndex."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from decimal import Decimal

import pytest

from evently.search.base import SearchDocument, SearchIndex, SearchQuery, SearchSort
from tests.support.search import NOW, doc, index_all


async def ids(index: SearchIndex, **query: object) -> list[uuid.UUID]:
    results = await index.search(SearchQuery.model_validate({"limit": 100, **query}))
    return [d.event_id for d in results.items]


async def test_upsert_is_idempotent_and_replaces_the_document(index: SearchIndex) -> None:
    first = doc("Harbour Blues Evening", price="30.00")
    await index_all(index, first, first)
    changed = first.model_copy(update={"name": "Harbour Soul Evening", "has_seats": False})
    await index_all(index, changed)

    results = await index.search(SearchQuery(text="harbour"))
    assert results.total == 1
    assert results.items == [changed]  # every field round-trips exactly (price as a decimal)
    assert await ids(index, text="blues") == []


async def test_upsert_many_writes_every_document(index: SearchIndex) -> None:
    docs = [doc(f"Chamber Music {i}") for i in range(3)]
    await index.upsert_many(docs)
    await index.upsert_many([])
    await index.upsert_many([docs[0], docs[0].model_copy(update={"name": "Chamber Music 0b"})])
    await index.refresh()
    assert set(await ids(index, text="chamber")) == {d.event_id for d in docs}


async def test_delete_removes_and_is_idempotent(index: SearchIndex) -> None:
    keep, gone = doc("Opera Gala"), doc("Opera Matinee")
    await index_all(index, keep, gone)
    await index.delete(gone.event_id)
    await index.delete(gone.event_id)
    await index.delete(uuid.uuid4())  # never indexed: not an error
    await index.refresh()
    assert await ids(index, text="opera") == [keep.event_id]


async def test_multi_word_query_ranks_documents_matching_more_words_and_better_fields_first(
    index: SearchIndex,
) -> None:
    both = doc("Jazz Night", city="Bergen", venue="Kulturhuset")
    jazz_elsewhere = doc("Jazz Night", city="Oslo", venue="Blue Note")
    bergen_rock = doc("Rock Night", city="Bergen", venue="USF Verftet")
    jazz_in_description = doc(
        "Folk Evening", city="Trondheim", venue="Olavshallen", description="with a jazz trio"
    )
    unrelated = doc("Ballet Premiere", city="Stavanger", venue="Konserthus")
    await index_all(index, unrelated, jazz_in_description, bergen_rock, jazz_elsewhere, both)

    found = await ids(index, text="jazz bergen")
    assert set(found) == {
        both.event_id,
        jazz_elsewhere.event_id,
        bergen_rock.event_id,
        jazz_in_description.event_id,
    }
    assert found[0] == both.event_id  # both words beat one word
    assert found[-1] == jazz_in_description.event_id  # a description hit ranks below name/city
    assert found.index(jazz_elsewhere.event_id) < found.index(jazz_in_description.event_id)


async def test_text_matching_folds_accents_and_stems(index: SearchIndex) -> None:
    cafe = doc("Café Concerts", city="Zürich", venue="Tonhalle")
    await index_all(index, cafe, doc("Rock Night", event_type="comedy"))
    assert await ids(index, text="cafe concert") == [cafe.event_id]
    assert await ids(index, text="ZURICH") == [cafe.event_id]
    assert await ids(index, text="tonhalle concerts") == [cafe.event_id]


async def test_punctuation_only_or_operator_text_is_harmless(index: SearchIndex) -> None:
    await index_all(index, doc("Jazz Night"))
    assert await ids(index, text="&|!():*'\"") == []
    assert await ids(index, text="jazz & | !( :*") != []


async def test_city_and_type_filters_ignore_case_and_accents(index: SearchIndex) -> None:
    zurich_concert = doc("Night A", city="Zürich", event_type="concert")
    zurich_opera = doc("Night B", city="Zürich", event_type="Opera")
    oslo_concert = doc("Night C", city="Oslo", event_type="concert")
    await index_all(index, zurich_concert, zurich_opera, oslo_concert)

    assert set(await ids(index, city="zurich")) == {zurich_concert.event_id, zurich_opera.event_id}
    assert set(await ids(index, event_type="CONCERT")) == {
        zurich_concert.event_id,
        oslo_concert.event_id,
    }
    assert await ids(index, city="Zürich", event_type="opera") == [zurich_opera.event_id]
    assert await ids(index, city="Zür") == []  # a filter is exact, not a prefix


async def test_date_range_is_inclusive_on_start_time(index: SearchIndex) -> None:
    early = doc("Show 1", starts_in=timedelta(days=1))
    middle = doc("Show 2", starts_in=timedelta(days=5))
    late = doc("Show 3", starts_in=timedelta(days=9))
    await index_all(index, early, middle, late)

    assert await ids(index, date_from=middle.starts_at) == [middle.event_id, late.event_id]
    assert await ids(index, date_to=middle.starts_at) == [early.event_id, middle.event_id]
    window = {"date_from": middle.starts_at, "date_to": middle.starts_at}
    assert await ids(index, **window) == [middle.event_id]
    assert await ids(index, date_from=late.starts_at + timedelta(seconds=1)) == []


async def test_price_max_is_inclusive(index: SearchIndex) -> None:
    cheap, exact, dear = doc("A", price="9.99"), doc("B", price="20.00"), doc("C", price="20.01")
    await index_all(index, cheap, exact, dear)
    assert set(await ids(index, price_max=Decimal("20.00"))) == {cheap.event_id, exact.event_id}
    assert await ids(index, price_max=Decimal("0")) == []


async def test_available_only_hides_sold_out_events(index: SearchIndex) -> None:
    open_, sold_out = doc("Indie Live"), doc("Indie Live", has_seats=False)
    await index_all(index, open_, sold_out)
    assert set(await ids(index, text="indie")) == {open_.event_id, sold_out.event_id}
    assert await ids(index, text="indie", available_only=True) == [open_.event_id]


async def test_ends_after_hides_events_that_are_over(index: SearchIndex) -> None:
    over = doc("Past Gig", starts_in=timedelta(days=-2))
    running = doc("Running Gig", starts_in=timedelta(hours=-1), hours=3)
    coming = doc("Next Gig", starts_in=timedelta(days=2))
    await index_all(index, over, running, coming)
    assert await ids(index, text="gig", sort="date", ends_after=NOW) == [
        running.event_id,
        coming.event_id,
    ]


async def test_sorting_by_date_and_by_price(index: SearchIndex) -> None:
    a = doc("Swing A", starts_in=timedelta(days=3), price="50.00")
    b = doc("Swing B", starts_in=timedelta(days=1), price="70.00")
    c = doc("Swing C", starts_in=timedelta(days=2), price="10.00")
    d = doc("Swing D", starts_in=timedelta(days=4), price="10.00")  # price tie: sooner first
    await index_all(index, a, b, c, d)

    by_date = [b.event_id, c.event_id, a.event_id, d.event_id]
    assert await ids(index, text="swing", sort=SearchSort.date) == by_date
    assert await ids(index, sort=SearchSort.date) == by_date
    assert await ids(index, sort=SearchSort.relevance) == by_date  # no text: soonest first
    assert await ids(index, text="swing", sort=SearchSort.price) == [
        c.event_id,
        d.event_id,
        a.event_id,
        b.event_id,
    ]


async def test_pagination_walks_every_result_once_with_a_stable_total(index: SearchIndex) -> None:
    docs = [doc(f"Salsa Night {i}", starts_in=timedelta(days=i + 1)) for i in range(5)]
    await index_all(index, *docs)

    seen: list[uuid.UUID] = []
    for page, size in ((1, 2), (2, 2), (3, 1)):
        results = await index.search(SearchQuery(text="salsa", sort="date", page=page, limit=2))
        assert results.total == 5
        assert len(results.items) == size
        seen += [d.event_id for d in results.items]
    assert seen == [d.event_id for d in docs]
    beyond = await index.search(SearchQuery(text="salsa", page=4, limit=2))
    assert beyond.items == []
    assert beyond.total == 5


async def test_suggestions_complete_prefixes_of_names_venues_and_cities(
    index: SearchIndex,
) -> None:
    await index_all(
        index,
        doc("Bergen Jazz Festival", city="Bergen", venue="Grieghallen"),
        doc("Grunge Revival", city="Bergen", venue="Grieghallen"),
        doc("Nordic Lights", city="Tromsø", venue="Kulturhus"),
    )
    pairs = {(s.text, s.kind) for s in await index.suggest("gri")}
    assert ("Grieghallen", "venue") in pairs
    assert ("Bergen Jazz Festival", "event") in {
        (s.text, s.kind) for s in await index.suggest("jazz fe")
    }
    assert ("Tromsø", "city") in {(s.text, s.kind) for s in await index.suggest("troms")}

    bergen = [s for s in await index.suggest("berg") if s.text == "Bergen" and s.kind == "city"]
    assert len(bergen) == 1  # two events in Bergen, one suggestion
    assert await index.suggest("   ") == []
    assert len(await index.suggest("g", limit=1)) <= 1


async def test_suggestions_forgive_a_typo(index: SearchIndex) -> None:
    await index_all(
        index,
        doc("Bergen Jazz Festival", city="Bergen", venue="Grieghallen"),
        doc("Rock Night", city="Oslo", venue="Rockefeller"),
    )
    assert ("Bergen", "city") in {(s.text, s.kind) for s in await index.suggest("Bergn")}
    assert ("Bergen Jazz Festival", "event") in {
        (s.text, s.kind) for s in await index.suggest("festivl")
    }
    assert ("Grieghallen", "venue") in {(s.text, s.kind) for s in await index.suggest("grighallen")}
    assert not any(s.text == "Rock Night" for s in await index.suggest("festivl"))


async def _batches(*batches: Sequence[SearchDocument]) -> AsyncIterator[Sequence[SearchDocument]]:
    for batch in batches:
        yield batch


async def test_reindex_makes_the_index_hold_exactly_the_given_documents(
    index: SearchIndex,
) -> None:
    stale, kept = doc("Gospel Choir"), doc("Punk Matinee")
    await index_all(index, stale, kept)
    renamed = kept.model_copy(update={"name": "Punk Marathon"})
    fresh = [doc(f"Reggae Weekend {i}") for i in range(3)]
    progress: list[int] = []

    written = await index.reindex(_batches([renamed, fresh[0]], fresh[1:]), progress.append)
    await index.refresh()

    assert written == 4
    assert progress == [2, 2]
    assert await ids(index, text="gospel") == []
    assert await ids(index, text="punk marathon") == [renamed.event_id]
    assert len(await ids(index, text="reggae")) == 3
    # the index stays writable after a rebuild
    await index_all(index, doc("Gospel Revival"))
    assert len(await ids(index, text="gospel")) == 1


async def test_ping_and_ensure_are_safe_to_repeat(index: SearchIndex) -> None:
    await index.ensure()
    await index.ensure()
    await index.ping()


@pytest.mark.parametrize("limit", [1, 3])
async def test_limit_caps_the_page(index: SearchIndex, limit: int) -> None:
    await index_all(index, *(doc(f"Techno Rave {i}") for i in range(4)))
    results = await index.search(SearchQuery(text="techno", limit=limit))
    assert len(results.items) == limit
    assert results.total == 4
