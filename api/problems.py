"""RFC 9457 problem+json for every error, and the OpenAPI responses generated from the errors.

Rendering: every ``evently.errors.EventlyError`` (and request validation, HTTP errors, an
unreachable backing service) becomes ``application/problem+json`` with a stable ``code``.

Documenting: a route lists the errors it raises, ``responses=problem_responses(SoldOut, ...)``;
:func:`document_common_problems` adds, to every route, the answers its dependencies and
parameters can give (401 for a bearer token, 403 for a role, 429 for a rate limit, 400/422 for
a body or parameters, 503 for a backing service) and the response headers its dependencies
add (``DEPENDENCY_HEADERS``: rate-limit fields, paging links), so every status code, content
type and header an operation can answer with is in the OpenAPI document.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from evently import errors
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

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details; `code` is the stable, machine-readable error.",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
    },
    "additionalProperties": True,
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


def render(exc: EventlyError) -> JSONResponse:
    return problem(
        exc.status, exc.code, exc.title, exc.detail, headers=exc.headers or None, **exc.extra
    )


# ---- OpenAPI ---------------------------------------------------------------------------------


def problem_responses(*errs: type[EventlyError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the errors a route raises, grouped by status."""
    by_status: dict[int, list[type[EventlyError]]] = defaultdict(list)
    for err in errs:
        if err not in by_status[err.status]:
            by_status[err.status].append(err)
    return {
        status: {
            "description": "; ".join(f"`{e.code}`: {e.title}" for e in group),
            "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}},
        }
        for status, group in sorted(by_status.items())
    }


#: a dependency's callable → the errors it can raise (api/auth/deps.py registers its own)
DEPENDENCY_ERRORS: dict[Any, tuple[type[EventlyError], ...]] = {}


#: a dependency's callable → (response headers it adds, on the success answer only or on all)
DEPENDENCY_HEADERS: dict[Any, tuple[dict[str, dict[str, Any]], bool]] = {}

#: what a 429 always carries
RETRY_AFTER_HEADER = {
    "Retry-After": {
        "description": "seconds until the limit resets",
        "required": True,
        "schema": {"type": "integer"},
    }
}


def _dependants(dependant: Dependant) -> Iterable[Dependant]:
    yield dependant
    for dep in dependant.dependencies:
        yield from _dependants(dep)


def _common_errors(route: APIRoute) -> list[type[EventlyError]]:
    found: list[type[EventlyError]] = [errors.ServiceUnavailable, errors.DeadlineExceeded]
    deps = list(_dependants(route.dependant))
    for dep in deps:
        found.extend(DEPENDENCY_ERRORS.get(dep.call, ()))
    if route.body_field is not None:
        found += [errors.MalformedJson, errors.Unprocessable, errors.PayloadTooLarge]
    elif any(d.path_params or d.query_params or d.header_params or d.cookie_params for d in deps):
        found.append(errors.Unprocessable)
    return found


def _api_routes(routes: Iterable[Any]) -> Iterable[APIRoute]:
    """Every APIRoute as declared, through included routers (without building FastAPI's
    per-include route contexts, which copy ``responses`` when first built)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # an included router (FastAPI >= 0.16x)
            yield from _api_routes(route.original_router.routes)


def document_common_problems(app: FastAPI) -> None:
    """Add to every route the problems its dependencies, parameters and body can cause, and
    document every error answer as ``application/problem+json`` (call once, after every
    router is included)."""
    for route in _api_routes(app.router.routes):
        extra = problem_responses(*_common_errors(route))
        for status, response in extra.items():
            declared = route.responses.get(status) or route.responses.get(str(status))
            if declared is None:
                route.responses[status] = response
            elif "content" not in declared:
                declared["content"] = response["content"]
        _document_headers(route)


def _document_headers(route: APIRoute) -> None:
    if 429 in route.responses:
        route.responses[429].setdefault("headers", {}).update(RETRY_AFTER_HEADER)
    success = route.status_code or 200
    for dep in _dependants(route.dependant):
        headers, success_only = DEPENDENCY_HEADERS.get(dep.call, ({}, False))
        if not headers:
            continue
        route.responses.setdefault(success, {})
        for status, response in route.responses.items():
            if not success_only or status == success:
                response.setdefault("headers", {}).update(headers)


# ---- handlers --------------------------------------------------------------------------------


def _jsonable_errors(errs: Any) -> list[dict[str, Any]]:
    return [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
        for e in errs
    ]


def is_unavailable(exc: BaseException) -> bool:
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
    return cause is not None and cause is not exc and is_unavailable(cause)


def _dependency_errors() -> tuple[type[Exception], ...]:
    """The exception types a dependency's outage raises (is_unavailable decides per case)."""
    import asyncpg
    from redis.exceptions import RedisError
    from sqlalchemy import exc as sa_exc
    from temporalio.service import RPCError

    return (
        OSError,
        asyncpg.PostgresConnectionError,
        sa_exc.DBAPIError,
        sa_exc.TimeoutError,
        RPCError,
        RedisError,
    )


def unavailable() -> JSONResponse:
    return render(errors.ServiceUnavailable(retry_after=2))


def install_problem_handlers(
    app: FastAPI, *, last_resort_headers: Callable[[Request], Mapping[str, str]] | None = None
) -> None:
    """``last_resort_headers``: what the 500/503 of an unhandled exception adds (it is
    rendered by Starlette's ServerErrorMiddleware, outside every other middleware)."""

    @app.exception_handler(EventlyError)
    async def _evently(request: Request, exc: EventlyError) -> JSONResponse:
        return render(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = _jsonable_errors(exc.errors())
        if any(e["type"] == "json_invalid" for e in errs):
            return render(errors.MalformedJson())
        first = errs[0] if errs else {"loc": [], "msg": "invalid"}
        where = ".".join(str(p) for p in first["loc"] if p != "body") or "request"
        return render(errors.Unprocessable(f"{where}: {first['msg']}", errors=errs))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        title = code.replace("_", " ").capitalize()
        return problem(
            exc.status_code, code, title, str(exc.detail), headers=getattr(exc, "headers", None)
        )

    def _answer(request: Request, exc: Exception) -> JSONResponse:
        if is_unavailable(exc):
            log.warning("dependency unavailable: %r", exc)
            return unavailable()
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "internal_error", "Internal server error", "An unexpected error.")

    # A dependency's failure (Postgres, Temporal, Redis gone) is answered inside the app, like
    # any named error: a handler for ``Exception`` runs in Starlette's ServerErrorMiddleware,
    # which re-raises after answering, and uvicorn then closes the connection — a client that
    # reused it at once (the answer said nothing of closing) met a reset instead of an answer
    # (seen in the fault suite: 1 "unanswered" request right after a 503 while Postgres was
    # down).
    for kind in _dependency_errors():

        @app.exception_handler(kind)
        async def _dependency(request: Request, exc: Exception) -> JSONResponse:
            return _answer(request, exc)

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        response = _answer(request, exc)
        if last_resort_headers is not None:
            response.headers.update(last_resort_headers(request))
        # uvicorn closes the connection after this answer (the exception is re-raised to it):
        # say so, so that no client sends its next request on it
        response.headers["Connection"] = "close"
        return response
