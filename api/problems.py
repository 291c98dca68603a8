"""RFC 9457 problem+json for every error, request validation included."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from evently.errors import EventlyError

log = logging.getLogger("evently.api")

PROBLEM_JSON = "application/problem+json"
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "service_unavailable",
}


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://evently.dev/problems/{code.replace('_', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _jsonable_errors(errors: Any) -> list[dict[str, Any]]:
    out = []
    for err in errors:
        item = {
            "loc": list(err.get("loc", ())),
            "msg": str(err.get("msg", "")),
            "type": err.get("type"),
        }
        out.append(item)
    return out


def _is_unavailable(exc: BaseException) -> bool:
    """Infrastructure down (Postgres, Temporal): answer 503 quickly instead of 500."""
    import asyncpg
    from sqlalchemy import exc as sa_exc
    from temporalio.service import RPCError, RPCStatusCode

    if isinstance(exc, (ConnectionError, TimeoutError, asyncpg.PostgresConnectionError)):
        return True
    if isinstance(exc, asyncpg.exceptions.CannotConnectNowError):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)):
        return True
    if isinstance(exc, sa_exc.TimeoutError):
        return True
    if isinstance(exc, RPCError) and exc.status in (
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
    ):
        return True
    if isinstance(exc, OSError):
        return True
    if isinstance(exc, RuntimeError) and str(exc).startswith("Failed client connect"):
        return True  # a lazy Temporal client whose server is down
    cause = exc.__cause__ or exc.__context__
    return cause is not None and cause is not exc and _is_unavailable(cause)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(EventlyError)
    async def _evently(request: Request, exc: EventlyError) -> JSONResponse:
        return problem(
            exc.status, exc.code, exc.title, exc.detail, headers=exc.headers or None, **exc.extra
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _jsonable_errors(exc.errors())
        if any(e["type"] == "json_invalid" for e in errors):
            return problem(400, "malformed_json", "Malformed JSON", "The body is not valid JSON.")
        first = errors[0] if errors else {"loc": [], "msg": "invalid"}
        where = ".".join(str(p) for p in first["loc"] if p != "body") or "request"
        return problem(
            422,
            "validation_error",
            "Invalid request",
            f"{where}: {first['msg']}",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        title = code.replace("_", " ").capitalize()
        return problem(
            exc.status_code,
            code,
            title,
            str(exc.detail),
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        if _is_unavailable(exc):
            log.warning("dependency unavailable: %r", exc)
            return problem(
                503,
                "service_unavailable",
                "Service unavailable",
                "A backing service is unavailable; retry shortly.",
                headers={"Retry-After": "2"},
            )
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "internal_error", "Internal server error", "An unexpected error.")
