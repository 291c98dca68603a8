"""The HTTP edge in the OpenAPI document: the headers every answer carries (as reusable
``components/headers``, referenced from every response) and each body route's size limit in
its ``413`` description. Applied once, to the generated document (paths are final there)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI

from api.http.headers import HSTS_VALUE, JSON_CSP

EVERY_ANSWER: dict[str, dict[str, Any]] = {
    "X-Content-Type-Options": {
        "description": "`nosniff`: never guess another content type",
        "required": True,
        "schema": {"type": "string", "enum": ["nosniff"]},
    },
    "Referrer-Policy": {
        "description": "`no-referrer`",
        "required": True,
        "schema": {"type": "string", "enum": ["no-referrer"]},
    },
    "Content-Security-Policy": {
        "description": f"`{JSON_CSP}`: a JSON answer loads nothing and is never framed",
        "required": True,
        "schema": {"type": "string"},
    },
    "Strict-Transport-Security": {
        "description": f"`{HSTS_VALUE}`, on answers served over HTTPS only",
        "schema": {"type": "string"},
    },
}


def _size(n: int) -> str:
    for unit, factor in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} bytes"


def document_http(app: FastAPI, *, max_body_bytes: int, body_limits: Mapping[str, int]) -> None:
    """Extend ``app.openapi()`` (call once, after every route is added)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _extend(generate(), max_body_bytes, body_limits)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def _extend(spec: dict[str, Any], default: int, limits: Mapping[str, int]) -> None:
    spec.setdefault("components", {}).setdefault("headers", {}).update(EVERY_ANSWER)
    refs = {name: {"$ref": f"#/components/headers/{name}"} for name in EVERY_ANSWER}
    for path, item in spec.get("paths", {}).items():
        limit = limits.get(path, default)
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status, response in operation["responses"].items():
                response.setdefault("headers", {}).update(refs)
                if status == "413":
                    response["description"] += (
                        f" (a body over {_size(limit)} is refused before it is read)"
                    )
