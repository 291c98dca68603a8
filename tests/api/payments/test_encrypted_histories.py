"""Payload encryption (issue 33) on the real stack: with EVENTLY_TEMPORAL_CODEC_KEYS the API's
client and the workers encrypt every payload, so a booking's history as Temporal stores it
holds no buyer email and no Stripe ``client_secret`` in clear; support reads it through the
codec endpoint (``/api/v1/codec/decode``), buyers may not; the encrypted history replays with
the codec, also after a key rotation.

Temporal's stored history is read through a client WITHOUT the codec (the dev server of the
session keeps its database in memory): what an operator with database access would see."""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from decimal import Decimal

import httpx
from pydantic import SecretStr
from temporalio.worker import Replayer

from tests.support.bookings import reserve_body, wait_status
from tests.support.factories import make_account, make_event
from tests.support.payments import CODEC_KEYS, StripeStack
from tests.support.temporal import AppFactory
from workers.main import STRICT_RUNNER
from workers.registry import queue_specs
from workflows.codec import ENCODING, codec_from_spec
from workflows.connection import connect, data_converter

THREE_D_SECURE = "4000002500003155"  # localstripe: requires_action until _authenticate


async def _card(http: httpx.AsyncClient, number: str) -> str:
    answer = await http.post(
        "/v1/payment_methods",
        data={
            "type": "card",
            "card[number]": number,
            "card[exp_month]": "12",
            "card[exp_year]": "2034",
            "card[cvc]": "123",
        },
    )
    answer.raise_for_status()
    pm: str = answer.json()["id"]
    return pm


async def test_a_booking_history_is_encrypted_and_support_reads_it_through_the_codec(
    encrypted_stripe_stack: StripeStack,
    localstripe_http: httpx.AsyncClient,
    app_factory: AppFactory,
) -> None:
    stack = encrypted_stripe_stack
    buyer = await make_account(stack.res)
    event = await make_event(stack.res, capacity=4, price=Decimal("40.00"))
    r = await stack.client.post(
        "/api/v1/bookings/reserve", json=reserve_body(event.id, 1), headers=buyer.headers
    )
    assert r.status_code == 201, r.text
    booking_id = r.json()["booking_id"]
    pending = await stack.client.post(
        "/api/v1/bookings/confirm",
        json={
            "booking_id": booking_id,
            "payment_method": await _card(localstripe_http, THREE_D_SECURE),
        },
        headers=buyer.headers,
    )
    assert pending.status_code == 202, pending.text
    client_secret = pending.json()["client_secret"]
    pid = client_secret.split("_secret_")[0]
    authenticated = await localstripe_http.post(
        f"/v1/payment_intents/{pid}/_authenticate",
        data={"client_secret": client_secret, "success": "true"},
    )
    authenticated.raise_for_status()
    await wait_status(stack.res, booking_id, "confirmed")

    # what Temporal stores: fetched without the codec
    workflow_id = f"booking-{booking_id}"
    raw = await connect(stack.temporal.service_client.config.target_host, stack.temporal.namespace)
    stored = await raw.get_workflow_handle(workflow_id).fetch_history()
    stored_json = stored.to_json()
    assert client_secret not in stored_json
    # (the booking workflow carries no email today, decoded or not: a guard for tomorrow)
    assert buyer.user.email not in stored_json
    assert pid not in stored_json  # not even the payment intent's id
    encoded = base64.b64encode(ENCODING).decode()
    payloads = [
        p
        for e in json.loads(stored_json)["events"]
        for p in _payloads(e)
        if p.get("metadata", {}).get("encoding") == encoded
    ]
    assert payloads, "no encrypted payloads in the history"

    # support decodes them through the codec endpoint (the Temporal UI's protocol)
    staff = await make_account(stack.res, role="support")
    decoded = await stack.client.post(
        "/api/v1/codec/decode",
        json={"payloads": payloads},
        headers=staff.headers | {"X-Namespace": stack.temporal.namespace},
    )
    assert decoded.status_code == 200, decoded.text
    clear = "".join(base64.b64decode(p["data"]).decode() for p in decoded.json()["payloads"])
    assert client_secret in clear
    assert booking_id in clear
    # ... and a buyer may not (not even their own booking's)
    refused = await stack.client.post(
        "/api/v1/codec/decode", json={"payloads": payloads}, headers=buyer.headers
    )
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert (
        await stack.client.post("/api/v1/codec/decode", json={"payloads": payloads})
    ).status_code == 401

    # the encrypted history replays with the codec: the configured keys, and after a rotation
    # (a newer key first, this one kept to decrypt)
    workflows = sorted(
        {wf for spec in queue_specs().values() for wf in spec.workflows}, key=lambda w: w.__name__
    )
    rotated = f"newer:{base64.b64encode(uuid.uuid4().bytes * 2).decode()},{CODEC_KEYS}"
    for keys in (CODEC_KEYS, rotated):
        replayer = Replayer(
            workflows=workflows,
            data_converter=data_converter(codec_from_spec(keys)),
            workflow_runner=STRICT_RUNNER,
        )
        await replayer.replay_workflow(stored)

    # an API whose settings lack the key cannot read them: a clear problem, not garbage
    other_keys = f"other:{base64.b64encode(b'x' * 32).decode()}"
    other = stack.res.settings.model_copy(update={"temporal_codec_keys": SecretStr(other_keys)})
    app = app_factory(dataclasses.replace(stack.res, settings=other), temporal=stack.temporal)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        unknown = await http.post(
            "/api/v1/codec/decode", json={"payloads": payloads[:1]}, headers=staff.headers
        )
    assert unknown.status_code == 422
    assert unknown.json()["code"] == "codec_payload_invalid"


def _payloads(event: dict[str, object]) -> list[dict[str, object]]:
    """Every payload in one history event (JSON form), wherever it sits."""
    found: list[dict[str, object]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "data" in node and isinstance(node.get("metadata"), dict):
                found.append(node)
                return
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(event)
    return found
