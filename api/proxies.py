"""The client's real address behind reverse proxies: the ONE place that reads forwarded headers.

Only when the connection's peer is a trusted proxy (``EVENTLY_TRUSTED_PROXIES``: IPs/CIDRs) is
the client taken from the header those proxies append to (``EVENTLY_FORWARDED_HEADER``:
``X-Forwarded-For`` or RFC 7239 ``Forwarded``; the other header is never read, since a client
can send either and a proxy only appends to its own). The client is the right-most hop that is
not a trusted proxy: everything left of it was written by the client and may be spoofed. With
no trusted proxies (the default) this middleware is not installed and headers are ignored;
uvicorn's own ``proxy_headers`` is off (cli/main.py), so this setting alone decides.

Everything inside sees the result in ``scope["client"]`` (``request.client.host``): the login
and register rate limits (api/auth/), logs.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from evently.settings import IPNetwork

_SCHEMES = frozenset({"http", "https"})


def hop_address(value: str) -> str | None:
    """One hop as a normalized IP (``"[2001:db8::1]:4711"`` → ``"2001:db8::1"``,
    ``"192.0.2.7:80"`` → ``"192.0.2.7"``), or None for ``unknown``, obfuscated ids, garbage."""
    value = value.strip().strip('"').strip()
    if value.startswith("["):
        end = value.find("]")
        if end == -1:
            return None
        value = value[1:end]
    elif value.count(":") == 1:  # IPv4 with a port (an IPv6 address has several colons)
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def _forwarded_elements(values: Sequence[str]) -> list[dict[str, str]]:
    """RFC 7239 ``Forwarded: for=a;proto=https, for=b`` → one dict per hop, in order."""
    elements = []
    for value in values:
        for element in value.split(","):
            pairs: dict[str, str] = {}
            for pair in element.split(";"):
                name, sep, raw = pair.partition("=")
                if sep:
                    pairs[name.strip().lower()] = raw.strip().strip('"')
            elements.append(pairs)
    return elements


def forwarded_client(
    headers: Sequence[tuple[bytes, bytes]], header: str, trusted: Callable[[str], bool]
) -> tuple[str | None, str | None]:
    """(client address, scheme) from the forwarded header, walking from the right past trusted
    proxies; (None, None) when the header is absent or its right-most untrusted hop is not an
    IP address (then the peer stays the client)."""
    name = header.encode("latin-1")
    protos: list[str | None]
    values = [v.decode("latin-1") for n, v in headers if n == name]
    if not values:
        return None, None
    if header == "forwarded":
        elements = _forwarded_elements(values)
        hops = [e.get("for", "") for e in elements]
        protos = [e.get("proto") for e in elements]
    else:
        hops = [hop for value in values for hop in value.split(",")]
        raw = next((v for n, v in reversed(headers) if n == b"x-forwarded-proto"), None)
        last = raw.decode("latin-1").split(",")[-1].strip() if raw else None
        protos = [None] * (len(hops) - 1)
        protos.append(last)
    address: str | None = None
    scheme: str | None = None
    for hop, proto in zip(reversed(hops), reversed(protos), strict=True):
        address = hop_address(hop)
        if address is None:
            return None, None
        scheme = proto.lower() if proto and proto.lower() in _SCHEMES else scheme
        if not trusted(address):
            break
    return address, scheme


class TrustedProxies:
    """Pure ASGI: rewrites ``scope["client"]`` (and ``scheme``) for requests from trusted
    proxies. Install it outermost, so every layer and endpoint sees the real client."""

    def __init__(self, app: ASGIApp, networks: Sequence[IPNetwork], header: str) -> None:
        self.app = app
        self.networks = tuple(networks)
        self.header = header
        self._known: dict[str, bool] = {}  # peer → trusted? (few distinct peers: the proxies)

    def trusted(self, host: str) -> bool:
        known = self._known.get(host)
        if known is None:
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                known = False
            else:
                known = any(address in network for network in self.networks)
            if len(self._known) < 4096:
                self._known[host] = known
        return known

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client")
        if scope["type"] in ("http", "websocket") and peer and self.trusted(peer[0]):
            address, scheme = forwarded_client(scope["headers"], self.header, self.trusted)
            if address is not None:
                scope = {**scope, "client": (address, 0)}
                if scheme is not None and scope["type"] == "http":
                    scope["scheme"] = scheme
        await self.app(scope, receive, send)
