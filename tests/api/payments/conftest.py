"""The real stack with the Stripe provider: the session's Postgres, Redis and Temporal server,
localstripe as the Stripe API, and the app both in process and over HTTP (localstripe delivers
its signed webhooks to it).

Its workers run in a Temporal namespace of their own: the session's workers (simulated provider)
poll the same task-queue names in the default namespace, and must never take a Stripe charge.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr
from temporalio.client import Client

from evently.infra.embedded import free_port
from evently.infra.resources import Resources
from evently.settings import Settings
from tests.support.localstripe import TEST_API_KEY
from tests.support.payments import CODEC_KEYS, WEBHOOK_PATH, StripeStack
from tests.support.servers import serve_app
from tests.support.temporal import AppFactory, register_namespace
from workers.main import build_workers
from workflows.common import QUEUES
from workflows.connection import connect, settings_codec


@pytest.fixture(scope="module")
async def stripe_stack(
    resources: Resources,
    settings: Settings,
    temporal_client: Client,
    localstripe_url: str,
    localstripe_http: httpx.AsyncClient,
    app_factory: AppFactory,
) -> AsyncIterator[StripeStack]:
    async with _stripe_stack(
        resources, settings, temporal_client, localstripe_url, localstripe_http, app_factory
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
async def encrypted_stripe_stack(
    resources: Resources,
    settings: Settings,
    temporal_client: Client,
    localstripe_url: str,
    localstripe_http: httpx.AsyncClient,
    app_factory: AppFactory,
) -> AsyncIterator[StripeStack]:
    """The Stripe stack with EVENTLY_TEMPORAL_CODEC_KEYS set: its API client and workers
    encrypt every payload (``temporal`` is that encrypting client)."""
    async with _stripe_stack(
        resources,
        settings,
        temporal_client,
        localstripe_url,
        localstripe_http,
        app_factory,
        codec_keys=CODEC_KEYS,
    ) as stack:
        yield stack


@contextlib.asynccontextmanager
async def _stripe_stack(
    resources: Resources,
    settings: Settings,
    temporal_client: Client,
    localstripe_url: str,
    localstripe_http: httpx.AsyncClient,
    app_factory: AppFactory,
    *,
    codec_keys: str | None = None,
) -> AsyncIterator[StripeStack]:
    namespace = await register_namespace(temporal_client, "evently-stripe")
    assert settings.temporal_address
    secret = f"whsec_{uuid.uuid4().hex}"
    stripe_settings = resources.settings.model_copy(
        update={
            "payment_provider": "stripe",
            "stripe_secret_key": SecretStr(TEST_API_KEY),
            "stripe_api_base": localstripe_url,
            "stripe_webhook_secret": SecretStr(secret),
            "temporal_namespace": namespace,
            "temporal_codec_keys": SecretStr(codec_keys) if codec_keys else None,
        }
    )
    temporal = await connect(
        settings.temporal_address, namespace, codec=settings_codec(stripe_settings)
    )
    res = dataclasses.replace(resources, settings=stripe_settings)
    workers = build_workers(
        temporal, res, list(QUEUES.values()), stripe_settings, strict_sandbox=True
    )
    app = app_factory(res, temporal=temporal)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    hook = uuid.uuid4().hex
    async with contextlib.AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(worker)
        await stack.enter_async_context(serve_app(app, port))
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        )
        registered = await localstripe_http.post(
            f"/_config/webhooks/{hook}",
            data={
                "url": f"{url}{WEBHOOK_PATH}",
                "secret": secret,
                "events[]": ["payment_intent.succeeded", "payment_intent.payment_failed"],
            },
        )
        registered.raise_for_status()
        try:
            yield StripeStack(res, temporal, client, url, secret, hook)
        finally:
            # stop deliveries to a server that is about to close
            await localstripe_http.post(
                f"/_config/webhooks/{hook}",
                data={"url": f"{url}{WEBHOOK_PATH}", "secret": secret, "events[]": ["none"]},
            )
