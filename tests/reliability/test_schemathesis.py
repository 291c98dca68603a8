"""Schemathesis against /openapi.json of a real API process (uvicorn over TCP, on the session
servers), run as clients would: with a buyer's token, with an admin's token and with none, on
valid (positive) and invalid (negative) inputs. Its conformance checks are the judge: no 5xx,
every status code and content type an operation answers is documented for it, every body
matches its documented schema. Bounded: a few examples per operation and mode."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from evently.infra.resources import Resources
from evently.settings import Settings
from tests.support.factories import make_account
from tests.support.servers import api_process

pytestmark = pytest.mark.reliability

EXAMPLES_PER_OPERATION = 4
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


EVENT_STREAM = "text/event-stream"


def _streams(operation: Any) -> bool:
    """An operation whose success answer is an endless Server-Sent Events stream."""
    success = operation.definition.raw.get("responses", {}).get("200", {})
    return EVENT_STREAM in success.get("content", {})


def _call_stream(case: schemathesis.Case, api: str, headers: dict[str, str]) -> Any:
    """Call an SSE operation without waiting for its endless body: a 200 must be an event
    stream whose first message arrives at once (it is then closed); any other answer is
    finite and is returned for the usual checks."""
    kwargs = case.as_transport_kwargs(base_url=api, headers=headers)
    with requests.request(**kwargs, stream=True, timeout=15) as raw:
        if raw.status_code != 200:
            raw.content  # noqa: B018 - read the finite problem body
            return schemathesis.Response.from_requests(raw, verify=True)
        assert raw.headers["content-type"].startswith(EVENT_STREAM), raw.headers
        first = next(raw.iter_lines(), b"")
        assert first.startswith((b"event:", b"id:", b"data:", b":")), first
        return None


@pytest.fixture(scope="module")
def api(settings: Settings) -> Iterator[str]:
    """`evently api` as a subprocess on the session's servers (read-mostly: nothing killed)."""
    with api_process(settings) as url:
        yield url


@pytest.fixture(scope="module")
async def identities(resources: Resources) -> dict[str, dict[str, str]]:
    buyer = await make_account(resources, "buyer")
    admin = await make_account(resources, "admin")
    return {"anonymous": {}, "buyer": buyer.headers, "admin": admin.headers}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("who", ["anonymous", "buyer", "admin"])
def test_the_whole_api_conforms_to_its_openapi_document(
    api: str, identities: dict[str, dict[str, str]], who: str, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_url(f"{api}/openapi.json")
    failures: list[str] = []
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        streams = _streams(operation)

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def exercise(case: schemathesis.Case) -> None:
            nonlocal calls
            calls += 1
            headers = {**(case.headers or {}), **identities[who]}
            if streams:  # noqa: B023 - read while this operation's examples run
                response = _call_stream(case, api, headers)
                if response is None:  # a conforming stream (checked above)
                    return
            else:
                response = case.call(base_url=api, headers=headers, timeout=15)
            try:
                case.validate_response(response, checks=CHECKS)
            except (AssertionError, FailureGroup) as exc:  # every check that failed
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code} "
                    f"{response.headers.get('content-type')}: {str(exc)[:400]}"
                )

        try:
            exercise()
        except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
            assert mode == GenerationMode.NEGATIVE
    assert calls >= 50  # the schema really was exercised
    assert not failures, f"{len(failures)} non-conforming answers:\n" + "\n".join(failures[:25])
