"""The error catalogue (no server): one class per stable code, rendered as problem+json and
documented from the same classes."""

from __future__ import annotations

import json

import pytest

from api.problems import PROBLEM_JSON, problem_responses, render
from evently import errors

pytestmark = pytest.mark.unit


def _own(cls: type[errors.EventlyError]) -> bool:
    """The catalogue's classes (the root is abstract; subclasses elsewhere reuse a code)."""
    return cls.__module__ == "evently.errors" and cls is not errors.EventlyError


def test_every_code_names_exactly_one_error_class() -> None:
    classes = [c for c in errors.all_errors() if _own(c)]
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes)), sorted(c for c in codes if codes.count(c) > 1)
    assert len(classes) > 50
    for cls in classes:
        assert cls.code.islower()
        assert " " not in cls.code
        assert 400 <= cls.status < 600
        assert cls.title


def test_an_error_renders_as_problem_json_with_its_code_and_extras() -> None:
    response = render(errors.SoldOut(remaining=0))
    assert response.status_code == 409
    assert response.media_type == PROBLEM_JSON
    body = json.loads(bytes(response.body))
    assert body["code"] == "sold_out"
    assert body["type"].endswith("/sold-out")
    assert body["detail"] == errors.SoldOut.message
    assert body["remaining"] == 0


def test_retry_after_and_www_authenticate_travel_as_headers() -> None:
    assert render(errors.Overloaded(retry_after=3)).headers["Retry-After"] == "3"
    assert render(errors.InvalidToken()).headers["WWW-Authenticate"] == "Bearer"


def test_documented_responses_group_the_errors_of_one_status() -> None:
    docs = problem_responses(errors.SoldOut, errors.EventNotOnSale, errors.EventNotFound)
    assert set(docs) == {404, 409}
    assert "`sold_out`" in docs[409]["description"]
    assert "`event_not_on_sale`" in docs[409]["description"]
    assert set(docs[409]["content"]) == {PROBLEM_JSON}
