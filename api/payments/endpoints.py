"""The payment provider's webhook."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request

from api.deps import ResourcesDep, TemporalDep
from api.payments import service
from api.problems import problem_responses
from evently.errors import (
    AmountMismatch,
    BookingNotFound,
    InvalidSignature,
    MalformedJson,
    PayloadTooLarge,
    SignatureExpired,
    Unprocessable,
    WorkflowTimeout,
)
from evently.payments import webhooks

router = APIRouter(tags=["payments"])
MAX_BODY = 64 * 1024


@router.post(
    "/payments/webhook",
    responses=problem_responses(
        MalformedJson,
        InvalidSignature,
        SignatureExpired,
        BookingNotFound,
        PayloadTooLarge,
        Unprocessable,
        AmountMismatch,
        WorkflowTimeout,
    ),
)
async def payment_webhook(
    request: Request,
    res: ResourcesDep,
    temporal: TemporalDep,
    evently_signature: Annotated[str | None, Header(alias="Evently-Signature")] = None,
) -> dict[str, str]:
    """Signed provider events (`Evently-Signature: t=<unix>,v1=<hex hmac>`); a replayed event
    id is acknowledged without acting twice."""
    body = await request.body()
    if len(body) > MAX_BODY:
        raise PayloadTooLarge("The webhook body is too large.")
    webhooks.verify(
        res.settings.payment_webhook_secret,
        evently_signature,
        body,
        res.settings.webhook_tolerance_seconds,
    )
    event = webhooks.parse(body)
    status = await service.handle(res, temporal, event)
    return {"status": status, "id": event.id}
