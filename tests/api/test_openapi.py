"""The OpenAPI document (no server): every error answer is documented as problem+json, and
what a route's dependencies can answer (401, 403, 422, 503...) is documented on it."""

from __future__ import annotations

from typing import Any

import pytest

from api.app import create_app
from api.problems import PROBLEM_JSON
from evently.settings import Settings

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app(Settings(env="test")).openapi()


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
    ]


def test_every_error_response_is_problem_json(spec: dict[str, Any]) -> None:
    wrong = [
        f"{method} {path} {status}: {sorted(response.get('content', {}))}"
        for method, path, op in _operations(spec)
        for status, response in op["responses"].items()
        if status[0] in "45" and set(response.get("content", {})) != {PROBLEM_JSON}
    ]
    assert not wrong, "\n".join(wrong)


def test_what_dependencies_can_answer_is_documented(spec: dict[str, Any]) -> None:
    for method, path, op in _operations(spec):
        responses = op["responses"]
        if path != "/healthz":  # liveness touches no backing service
            assert "503" in responses, f"{method} {path}"
        if op.get("security"):
            assert "401" in responses, f"{method} {path}: a bearer token can be refused"
        if op.get("requestBody"):
            assert {"400", "422"} <= set(responses), f"{method} {path}: a body can be refused"
    reserve = spec["paths"]["/api/v1/bookings/reserve"]["post"]["responses"]
    assert {"201", "400", "401", "404", "409", "422", "429", "503"} <= set(reserve)
    admin = spec["paths"]["/api/v1/admin/venues"]["post"]["responses"]
    assert "403" in admin
