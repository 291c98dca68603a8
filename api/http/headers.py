"""The security headers every answer carries (docs/api.md, "HTTP behaviour")."""

from __future__ import annotations

from starlette.requests import Request

Headers = tuple[tuple[bytes, bytes], ...]

JSON_CSP = "default-src 'none'; frame-ancestors 'none'"
HSTS_VALUE = "max-age=31536000"

SECURITY_HEADERS: Headers = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
CSP: Headers = ((b"content-security-policy", JSON_CSP.encode("ascii")),)
HSTS: Headers = ((b"strict-transport-security", HSTS_VALUE.encode("ascii")),)


def security_headers(request: Request) -> dict[str, str]:
    """For answers rendered outside the edge layer (the last-resort 500/503 handler)."""
    https = request.url.scheme == "https"
    return {
        name.decode(): value.decode()
        for name, value in SECURITY_HEADERS + CSP + (HSTS if https else ())
    }
