"""One delivery attempt: the message's body, its Standard Webhooks signature, the HTTP POST.

Headers (https://www.standardwebhooks.com/): ``webhook-id`` — the message's stable id
(``msg_<32 hex>``, the same on every retry: receivers deduplicate on it), ``webhook-timestamp``
(unix seconds of this attempt) and ``webhook-signature`` (``v1,<base64 HMAC-SHA256>`` over
``<id>.<timestamp>.<body>``), made with the ``standardwebhooks`` library. The body is the same
bytes on every attempt:

    {"type": "booking.confirmed", "timestamp": "<when it happened>", "organization_id": "...",
     "data": {...}}

Outcomes: any 2xx is delivered; 410 Gone ends the subscription; anything else (another
status, a timeout, a refused connection, a destination that is not allowed) is retried.

Destinations (issue 28, :mod:`evently.webhooks.targets`): the host is resolved ONCE per hop,
every address it has is checked, and the request goes to a checked address (the first that
accepts a connection) with the original ``Host`` header and, for https, the original name
for SNI and certificate verification (httpcore's ``sni_hostname`` extension): no second DNS
lookup, no DNS rebinding. The client ignores proxy variables (``trust_env=False``) and keeps
no idle connections (every attempt connects to the address it has just checked; a pooled TLS
connection to an IP must not carry another host's request). At most :data:`MAX_REDIRECTS`
redirects are followed, only 307/308 (which keep the POST and its body), each hop checked the
same way. The delivery log keeps the status, the timing and the answer's headers; the answer's
body is never read.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from evently.webhooks import targets

USER_AGENT = "Evently-Webhooks/1"


def message_id(message_uuid: uuid.UUID) -> str:
    return f"msg_{message_uuid.hex}"


def body(
    *,
    event_type: str,
    created_at: datetime,
    organization_id: uuid.UUID,
    data: dict[str, Any],
) -> bytes:
    """The message's body: deterministic, so every attempt sends (and signs) the same bytes."""
    return json.dumps(
        {
            "type": event_type,
            "timestamp": created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "organization_id": str(organization_id),
            "data": data,
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()


def signed_headers(secret: str, msg_id: str, payload: bytes, now: datetime) -> dict[str, str]:
    signature = Webhook(secret).sign(msg_id, now.astimezone(UTC), payload.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


MAX_REDIRECTS = 3
MAX_HEADERS = 50
MAX_HEADER_CHARS = 500


def client() -> httpx.AsyncClient:
    """The deliveries' HTTP client: no proxy from the environment, no redirects of its own,
    no idle connections kept (see the module's docstring)."""
    return httpx.AsyncClient(
        trust_env=False,
        follow_redirects=False,
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=0),
    )


@dataclass(frozen=True)
class Sent:
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    response_headers: dict[str, str] | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        return self.status_code == 410


def kept_headers(headers: httpx.Headers) -> dict[str, str]:
    """The answer's headers as the log keeps them: lower-case names, repeats joined, at most
    :data:`MAX_HEADERS` of them, each value cut at :data:`MAX_HEADER_CHARS`."""
    kept: dict[str, str] = {}
    for name, value in headers.multi_items():
        key = name.lower()
        if key not in kept and len(kept) >= MAX_HEADERS:
            continue
        joined = f"{kept[key]}, {value}" if key in kept else value
        kept[key] = joined[:MAX_HEADER_CHARS]
    return kept


async def _post_to_checked_address(
    http: httpx.AsyncClient,
    url: httpx.URL,
    *,
    policy: targets.TargetPolicy,
    resolver: targets.Resolver,
    headers: dict[str, str],
    payload: bytes,
    timeout_seconds: float,
) -> httpx.Response:
    """One hop: resolve once, check every address, POST to the first checked address that
    accepts a connection. The answer's body is not read (the response is closed)."""
    host = url.raw_host.decode("ascii")
    port = url.port or (443 if url.scheme == "https" else 80)
    addresses = await targets.checked_addresses(host, port, policy, resolver)
    extensions = {}
    if url.scheme == "https" and targets.literal_address(host) is None:
        extensions["sni_hostname"] = host  # the certificate is verified for the name
    failure: httpx.ConnectError | None = None
    for address in addresses:
        request = http.build_request(
            "POST",
            url.copy_with(host=address),
            content=payload,
            headers={**headers, "host": url.netloc.decode("ascii")},
            timeout=httpx.Timeout(timeout_seconds),
            extensions=extensions,
        )
        try:
            response = await http.send(request, stream=True)
        except httpx.ConnectError as exc:
            failure = exc
            continue
        await response.aclose()
        return response
    assert failure is not None
    raise failure


async def send(
    http: httpx.AsyncClient,
    url: str,
    *,
    secret: str,
    msg_id: str,
    payload: bytes,
    timeout_seconds: float,
    policy: targets.TargetPolicy,
    resolver: targets.Resolver = targets.system_resolver,
) -> Sent:
    started_at = datetime.now(UTC)
    clock = time.monotonic()

    def done(
        status_code: int | None, error: str | None, headers: dict[str, str] | None = None
    ) -> Sent:
        elapsed = int((time.monotonic() - clock) * 1000)
        return Sent(started_at, elapsed, status_code, error[:500] if error else None, headers)

    headers = signed_headers(secret, msg_id, payload, started_at)
    target = httpx.URL(url)
    try:
        async with asyncio.timeout(timeout_seconds):  # the whole attempt, however it trickles
            for hop in range(MAX_REDIRECTS + 1):
                response = await _post_to_checked_address(
                    http,
                    target,
                    policy=policy,
                    resolver=resolver,
                    headers=headers,
                    payload=payload,
                    timeout_seconds=timeout_seconds,
                )
                location = response.headers.get("location")
                if response.status_code not in (307, 308) or not location:
                    break
                if hop == MAX_REDIRECTS:
                    return done(
                        response.status_code,
                        f"more than {MAX_REDIRECTS} redirects",
                        kept_headers(response.headers),
                    )
                target = target.join(location)
                if target.scheme not in ("http", "https") or target.userinfo:
                    return done(
                        response.status_code,
                        "redirected to a URL that is not plain http(s)",
                        kept_headers(response.headers),
                    )
    except targets.TargetRefused as exc:
        return done(None, str(exc))
    except targets.Unresolvable as exc:
        return done(None, str(exc))
    except (TimeoutError, httpx.TimeoutException) as exc:
        return done(None, f"timed out after {timeout_seconds:g} s ({type(exc).__name__})")
    except httpx.HTTPError as exc:
        return done(None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    error = None
    if not 200 <= response.status_code < 300:
        error = f"HTTP {response.status_code}"  # the answer's body is never kept
    return done(response.status_code, error, kept_headers(response.headers))
