"""One error base with an HTTP status and a stable machine-readable code.

The API renders every subclass as RFC 9457 problem+json (api/problems.py).
"""

from __future__ import annotations

from typing import Any


class EventlyError(Exception):
    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        if code:
            self.code = code
        self.headers = headers or {}
        self.extra = extra


class BadRequest(EventlyError):
    pass


class Unauthorized(EventlyError):
    status, code, title = 401, "unauthorized", "Not authenticated"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kw)


class Forbidden(EventlyError):
    status, code, title = 403, "forbidden", "Not allowed"


class NotFound(EventlyError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(EventlyError):
    status, code, title = 409, "conflict", "Conflict"


class PaymentRequired(EventlyError):
    status, code, title = 402, "payment_declined", "Payment declined"


class PayloadTooLarge(EventlyError):
    status, code, title = 413, "payload_too_large", "Payload too large"


class Unprocessable(EventlyError):
    status, code, title = 422, "validation_error", "Invalid request"


class TooManyRequests(EventlyError):
    status, code, title = 429, "rate_limited", "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after: int = 1, **kw: Any) -> None:
        kw.setdefault("headers", {"Retry-After": str(max(1, retry_after))})
        super().__init__(detail, **kw)


class ServiceUnavailable(EventlyError):
    status, code, title = 503, "service_unavailable", "Service unavailable"

    def __init__(self, detail: str | None = None, *, retry_after: int = 1, **kw: Any) -> None:
        kw.setdefault("headers", {"Retry-After": str(max(1, retry_after))})
        super().__init__(detail, **kw)
