"""The payment provider's webhook."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request

from api.deps import ResourcesDep
from evently import webhooks
from evently.errors import PayloadTooLarge

router = APIRouter(tags=["payments"])
MAX_BODY = 64 * 1024


@router.post(
    "/payments/webhook",
    responses={
        400: {"description": "malformed"},
        401: {"description": "bad or stale signature"},
        404: {"description": "unknown booking"},
        413: {"description": "too large"},
        422: {"description": "invalid event"},
    },
)
async def payment_webhook(
    request: Request,
    res: ResourcesDep,
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
    status = await webhooks.handle(res, event)
    return {"status": status, "id": event.id}
