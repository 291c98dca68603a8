"""One delivery attempt: the message's body, its Standard Webhooks signature, the HTTP POST.

Headers (https://www.standardwebhooks.com/): ``webhook-id`` — the message's stable id
(``msg_<32 hex>``, the same on every retry: receivers deduplicate on it), ``webhook-timestamp``
(unix seconds of this attempt) and ``webhook-signature`` (``v1,<base64 HMAC-SHA256>`` over
``<id>.<timestamp>.<body>``), made with the ``standardwebhooks`` library. The body is the same
bytes on every attempt:

    {"type": "booking.confirmed", "timestamp": "<when it happened>", "organization_id": "...",
     "data": {...}}

Outcomes: any 2xx is delivered; 410 Gone ends the subscription; anything else (another
status, a timeout, a refused connection, a destination that resolves to a private address when
those are not allowed) is retried. Redirects are not followed; at most 4 KiB of an answer is
read (kept, truncated, in the log).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from standardwebhooks.webhooks import Webhook

from evently.webhooks.subscriptions import is_public_address

MAX_ANSWER_BYTES = 4096
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


@dataclass(frozen=True)
class Sent:
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        return self.status_code == 410


async def _destination_error(url: str) -> str | None:
    """Why this URL must not be called now (it resolves to a non-public address), or None."""
    host = urlsplit(url).hostname or ""
    port = urlsplit(url).port or (443 if url.startswith("https") else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port)
    except OSError as exc:
        return f"cannot resolve {host}: {exc}"
    private = [str(info[4][0]) for info in infos if not is_public_address(str(info[4][0]))]
    if private:
        return f"{host} resolves to a non-public address ({private[0]}): refused"
    return None


async def send(
    client: httpx.AsyncClient,
    url: str,
    *,
    secret: str,
    msg_id: str,
    payload: bytes,
    timeout_seconds: float,
    allow_private: bool,
) -> Sent:
    started_at = datetime.now(UTC)
    clock = time.monotonic()

    def done(status_code: int | None, error: str | None) -> Sent:
        elapsed = int((time.monotonic() - clock) * 1000)
        return Sent(started_at, elapsed, status_code, error[:500] if error else None)

    if not allow_private:
        refused = await _destination_error(url)
        if refused is not None:
            return done(None, refused)
    headers = signed_headers(secret, msg_id, payload, started_at)
    try:
        async with asyncio.timeout(timeout_seconds):  # the whole attempt, however it trickles
            async with client.stream(
                "POST",
                url,
                content=payload,
                headers=headers,
                timeout=httpx.Timeout(timeout_seconds),
                follow_redirects=False,
            ) as response:
                answer = b""
                async for chunk in response.aiter_bytes():
                    answer += chunk
                    if len(answer) >= MAX_ANSWER_BYTES:
                        break
    except (TimeoutError, httpx.TimeoutException) as exc:
        return done(None, f"timed out after {timeout_seconds:g} s ({type(exc).__name__})")
    except httpx.HTTPError as exc:
        return done(None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    error = None
    if not 200 <= response.status_code < 300:
        snippet = answer[:200].decode("utf-8", "replace").strip()
        error = f"HTTP {response.status_code}" + (f": {snippet}" if snippet else "")
    return done(response.status_code, error)
