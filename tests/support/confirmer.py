"""A stand-in for the booking worker's confirmations, in its own process so a test can kill it
with SIGKILL mid-way (issue 31: invoice numbers stay gap-free across a worker's crash).

``python -m tests.support.confirmer DATABASE_URL IDS_FILE CONCURRENCY LINGER``: confirms every
booking listed in IDS_FILE (one id a line) with ``evently.inventory.seats.confirm`` — the
statement the confirm activity runs, which numbers the invoice — each in its own transaction
that stays open LINGER seconds after the number was taken, so a kill leaves numbered but
uncommitted confirmations behind. Prints ``confirmed <n>`` as they commit; confirmations
already done are skipped (the statement is idempotent, as a Temporal retry relies on).
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from evently.inventory import seats

#: its connections' name in pg_stat_activity (a test waits for the killed ones to be gone)
APPLICATION_NAME = "evently-test-confirmer"


async def confirm_all(
    database_url: str, ids: list[uuid.UUID], concurrency: int, linger: float
) -> int:
    engine = create_async_engine(
        database_url,
        pool_size=concurrency,
        max_overflow=0,
        connect_args={"server_settings": {"application_name": APPLICATION_NAME}},
    )
    gate = asyncio.Semaphore(concurrency)
    done = 0

    async def one(booking_id: uuid.UUID) -> None:
        nonlocal done
        async with gate, engine.begin() as conn:
            if await seats.confirm(conn, booking_id) is None:
                return
            await conn.execute(text("SELECT pg_sleep(:s)"), {"s": linger})
        done += 1
        print(f"confirmed {done}", flush=True)

    try:
        await asyncio.gather(*(one(b) for b in ids))
    finally:
        await engine.dispose()
    return done


def main() -> None:
    database_url, ids_file, concurrency, linger = sys.argv[1:5]
    ids = [uuid.UUID(x) for x in Path(ids_file).read_text().split()]
    asyncio.run(confirm_all(database_url, ids, int(concurrency), float(linger)))


if __name__ == "__main__":
    main()
