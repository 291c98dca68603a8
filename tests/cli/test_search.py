"""`evently search reindex` against the test database: rebuilds the embedded index in place."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx

from evently.infra.resources import Resources
from evently.search.base import SearchDocument
from tests.support.factories import make_event
from tests.support.search import found, token


async def test_reindex_command_rebuilds_from_postgres(
    client: httpx.AsyncClient, resources: Resources, tmp_path: Path
) -> None:
    tok = token()
    published = await make_event(resources, name=f"{tok} Unindexed")  # never synced
    draft = await make_event(resources, name=f"{tok} Draft", status="draft")
    # a stale document of an event that is no longer searchable (and one of no event at all)
    index = resources.search
    now = datetime.now(UTC)
    for event_id in (draft.id, uuid.uuid4()):
        await index.upsert(
            SearchDocument(
                event_id=event_id,
                name=f"{tok} Stale",
                event_type="concert",
                venue_id=uuid.uuid4(),
                venue_name="Gone Hall",
                city="Nowhere",
                starts_at=now + timedelta(days=3),
                ends_at=now + timedelta(days=3, hours=2),
                price=Decimal("1.00"),
                currency="EUR",
                has_seats=True,
            )
        )
    await index.refresh()
    assert len(await found(client, q=tok)) == 2

    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTLY_")}
    env.update(
        EVENTLY_DATABASE_URL=resources.settings.database_url or "",
        EVENTLY_STATE_DIR=str(tmp_path),
        EVENTLY_ELASTICSEARCH_INDEX=resources.settings.elasticsearch_index,
    )
    if resources.settings.elasticsearch_url:  # the same backend as the app under test
        env["EVENTLY_ELASTICSEARCH_URL"] = resources.settings.elasticsearch_url
    evently = Path(sys.executable).parent / "evently"
    proc = await asyncio.to_thread(
        subprocess.run,
        [str(evently), "search", "reindex", "--batch-size", "50"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"published events into {index.backend}" in proc.stderr

    await index.refresh()
    assert await found(client, q=tok) == [str(published.id)]  # the stale ones are gone
