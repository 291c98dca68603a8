"""localstripe — a local server of the Stripe REST API (in memory) — started once per session
(tests/conftest.py imports these fixtures, so every test directory shares the one server).

Measured with localstripe 1.15.10: it binds every interface (``::``) on the given port, and
writes its whole store to the fixed path ``/tmp/localstripe.pickle`` after every change
(reloaded at start unless ``--from-scratch``, which we pass so no earlier run leaks in).
Set ``EVENTLY_TEST_STRIPE_API_BASE`` to use a localstripe that is already running.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from evently.infra.embedded import free_port
from evently.payments.stripe import StripeProvider

# localstripe accepts any key that looks like a test key
TEST_API_KEY = "sk_test_evently_localstripe"


def _wait_until_serving(base: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"localstripe exited with {proc.returncode} before serving")
        try:
            if httpx.get(f"{base}/v1/payment_intents", auth=(TEST_API_KEY, "")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"localstripe did not answer on {base} within {timeout} s")


@pytest.fixture(scope="session")
def localstripe_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("EVENTLY_TEST_STRIPE_API_BASE")
    if configured:
        yield configured.rstrip("/")
        return
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path_factory.mktemp("localstripe") / "localstripe.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "localstripe", "--port", str(port), "--from-scratch"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_until_serving(base, proc)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
async def stripe_provider(localstripe_url: str) -> AsyncIterator[StripeProvider]:
    provider = StripeProvider(TEST_API_KEY, api_base=localstripe_url, max_network_retries=0)
    try:
        yield provider
    finally:
        await provider.aclose()


@pytest.fixture(scope="session")
async def localstripe_http(localstripe_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Raw HTTP to localstripe: listings as Stripe serves them, and its test-only endpoints."""
    async with httpx.AsyncClient(base_url=localstripe_url, auth=(TEST_API_KEY, "")) as client:
        yield client
