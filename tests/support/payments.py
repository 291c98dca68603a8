"""The Stripe stack of the payment tests: its webhook path and what `stripe_stack` gives."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import httpx
from temporalio.client import Client

from evently.infra.resources import Resources

# payload encryption (issue 33): the keys of the encrypted stack; "old" decrypts only
CODEC_KEYS = (
    f"new:{base64.b64encode(b'n' * 32).decode()},old:{base64.b64encode(b'o' * 32).decode()}"
)

WEBHOOK_PATH = "/api/v1/payments/stripe/webhook"


@dataclass
class StripeStack:
    res: Resources  # settings: EVENTLY_PAYMENT_PROVIDER=stripe on localstripe
    temporal: Client  # the stack's own namespace
    client: httpx.AsyncClient  # the app in process
    url: str  # the same app over HTTP: localstripe's webhooks arrive here
    webhook_secret: str
    hook_id: str  # the webhook endpoint registered at localstripe
