"""Record BookingWorkflow histories of every existing path, to pin them: run it with the code
whose histories should keep replaying (test_replay.py replays them with the current code).

    .venv/bin/python -m tests.workflows.booking.histories.record tests/workflows/booking/histories

Each scenario runs on the time-skipping server with the unit layer's stand-in activities and
writes ``<scenario>.json`` (the SDK's history JSON; a second run of the same booking id, the
late-payment one, as ``<scenario>-run2.json``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from evently.settings import Settings
from tests.workflows.booking.test_unit import Ledger, _final, _hold
from tests.workflows.conftest import workers_without_resources
from workflows.booking import client as booking_client
from workflows.booking.contract import BookingInput, PaymentNotice, booking_workflow_id
from workflows.common import SEARCH_ATTRIBUTE_TYPES

Scenario = Callable[[WorkflowEnvironment, Ledger], Awaitable[list[uuid.UUID]]]


def _notice(event_id: str) -> PaymentNotice:
    return PaymentNotice(
        provider_event_id=event_id,
        provider_payment_id=f"pi_{event_id}",
        amount=Decimal("10.00"),
        currency="EUR",
    )


async def expired(env: WorkflowEnvironment, ledger: Ledger) -> list[uuid.UUID]:
    data, _ = await _hold(env.client, 2)
    await _final(env, data.booking_id)
    return [data.booking_id]


async def declined_then_paid(env: WorkflowEnvironment, ledger: Ledger) -> list[uuid.UUID]:
    data, _ = await _hold(env.client)
    await booking_client.pay(env.client, data.booking_id, "pm_card_chargeDeclined")
    await booking_client.pay(env.client, data.booking_id, "pm_card_visa")
    await _final(env, data.booking_id)
    return [data.booking_id]


async def paid_then_cancelled(env: WorkflowEnvironment, ledger: Ledger) -> list[uuid.UUID]:
    data, _ = await _hold(env.client)
    await booking_client.pay(env.client, data.booking_id, "pm_card_visa")
    await booking_client.cancel(env.client, data.booking_id, actor="user:x", reason="ill")
    return [data.booking_id]


async def cancelled_while_held(env: WorkflowEnvironment, ledger: Ledger) -> list[uuid.UUID]:
    ledger.waiting = True  # the freed seats go to the waitlist
    data, _ = await _hold(env.client)
    await booking_client.cancel(env.client, data.booking_id, actor="user:y", reason="plans")
    ledger.waiting = False
    return [data.booking_id]


async def sold_out(env: WorkflowEnvironment, ledger: Ledger) -> list[uuid.UUID]:
    data, _ = await _hold(env.client, 5)
    await _final(env, data.booking_id)
    return [data.booking_id]


async def webhook_while_held(env: WorkflowEnvironment, ledger: Ledger) -> list[uuid.UUID]:
    data, _ = await _hold(env.client)
    await booking_client.deliver_payment(env.client, data, _notice(f"held-{data.booking_id}"))
    await _final(env, data.booking_id)
    return [data.booking_id]


async def _late(env: WorkflowEnvironment, ledger: Ledger, *, seats_gone: bool) -> BookingInput:
    data, _ = await _hold(env.client)
    await _final(env, data.booking_id)
    await _save(env.client, data.booking_id, f"{_current}")
    if seats_gone:
        ledger.seats = 0
    notice = _notice(f"late-{data.booking_id}")
    await booking_client.deliver_payment(env.client, data, notice)
    await booking_client.deliver_payment(env.client, data, notice)  # the provider retries
    await _final(env, data.booking_id)
    ledger.seats = 3
    return data


async def late_payment_confirmed(env: WorkflowEnvironment, ledger: Ledger) -> list[uuid.UUID]:
    return [(await _late(env, ledger, seats_gone=False)).booking_id]


async def late_payment_refunded(env: WorkflowEnvironment, ledger: Ledger) -> list[uuid.UUID]:
    return [(await _late(env, ledger, seats_gone=True)).booking_id]


SCENARIOS: dict[str, Scenario] = {
    "expired": expired,
    "declined_then_paid": declined_then_paid,
    "paid_then_cancelled": paid_then_cancelled,
    "cancelled_while_held": cancelled_while_held,
    "sold_out": sold_out,
    "webhook_while_held": webhook_while_held,
    "late_payment_confirmed": late_payment_confirmed,
    "late_payment_refunded": late_payment_refunded,
}
_out = Path(".")
_current = ""


async def _save(client: Client, booking_id: uuid.UUID, name: str) -> None:
    history = await client.get_workflow_handle(booking_workflow_id(booking_id)).fetch_history()
    (_out / f"{name}.json").write_text(history.to_json())


async def _environment() -> WorkflowEnvironment:
    path = shutil.which("temporal-test-server") or os.path.join(
        os.path.dirname(sys.executable), "temporal-test-server"
    )
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=path, data_converter=pydantic_data_converter
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                n: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for n in SEARCH_ATTRIBUTE_TYPES
            },
        )
    )
    return env


async def main(out: Path) -> None:
    """One fresh server per scenario (its time-skipping state must not leak, as in the tests)."""
    global _out, _current
    _out = out
    out.mkdir(parents=True, exist_ok=True)
    for name, scenario in SCENARIOS.items():
        _current = name
        env = await _environment()
        try:
            ledger = Ledger()
            settings = Settings(env="test")
            async with workers_without_resources(env.client, settings, ledger.stand_ins()):
                ids = await scenario(env, ledger)
                run2 = name.startswith("late_payment")
                await _save(env.client, ids[0], f"{name}-run2" if run2 else name)
        finally:
            await env.shutdown()
        print(name, "recorded")


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
