"""Where organizer webhooks may go: public addresses only (issue 28), checked at registration
and again, resolved, at every delivery, which then connects to the address it checked.

Refused, in every environment: loopback, private (RFC 1918, ULA ``fc00::/7``), link-local
(cloud metadata), CGNAT ``100.64.0.0/10``, multicast, unspecified, reserved, benchmark and
documentation ranges — anything Python's ``ipaddress`` does not call global — and IPv6 forms
that embed an IPv4 address which is any of those: IPv4-mapped ``::ffff:0:0/96``,
IPv4-compatible ``::/96``, NAT64 ``64:ff9b::/96`` (and the local-use ``64:ff9b:1::/48``),
6to4 ``2002::/16``; Teredo ``2001::/32`` always. ``EVENTLY_WEBHOOK_ALLOWED_NETWORKS`` names
networks an operator trusts (an internal receiver); ``EVENTLY_WEBHOOK_ALLOW_PRIVATE_TARGETS``
allows everything (tests, ``evently dev``).

Name resolution is pluggable (:class:`Resolver`): the default asks the event loop's
``getaddrinfo``; tests pass a stub that answers what they need.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Protocol

from evently.settings import IPNetwork, Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_TEREDO = ipaddress.IPv6Network("2001::/32")


class Resolver(Protocol):
    """A name's addresses (strings, as ``getaddrinfo`` gives them), or ``OSError``."""

    async def __call__(self, host: str, port: int) -> list[str]: ...


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class TargetRefused(Exception):
    """The destination is not one webhooks may reach (the message says why)."""


class Unresolvable(Exception):
    """The name has no address now (DNS failed or answered nothing)."""


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries (mapped, compatible, NAT64, 6to4), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def why_not_public(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public destination, or None if it is one."""
    if ip.is_loopback:
        return "loopback"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _TEREDO:
            return "Teredo"
        if ip in _NAT64_LOCAL:
            return "local-use NAT64"
        inner = embedded_ipv4(ip)
        if inner is not None:
            why = why_not_public(inner)
            return f"embeds {inner}, {why}" if why else None
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "shared address space (CGNAT)"
    if ip.is_private:
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "not globally routable"
    return None


@dataclass(frozen=True)
class TargetPolicy:
    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def of(cls, settings: Settings) -> TargetPolicy:
        return cls(
            allow_private=settings.webhook_allow_private_targets,
            allowed_networks=settings.webhook_allowed_network_list,
        )

    def refusal(self, address: str) -> str | None:
        """Why webhooks must not connect to ``address`` (e.g. "loopback"), or None."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if self.allow_private:
            return None
        forms: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and (inner := embedded_ipv4(ip)) is not None:
            forms.append(inner)
        if any(
            f in net for f in forms for net in self.allowed_networks if f.version == net.version
        ):
            return None
        return why_not_public(ip)


def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


async def checked_addresses(
    host: str, port: int, policy: TargetPolicy, resolver: Resolver
) -> list[str]:
    """Resolve ``host`` once and check every address it has: all of them (in order, without
    repeats), or :class:`TargetRefused` when any one is refused (:class:`Unresolvable` when
    it does not resolve). The caller connects to these addresses, never to the name."""
    literal = literal_address(host)
    if literal is not None:
        found = [str(literal)]
    else:
        try:
            found = list(dict.fromkeys(await resolver(host, port)))
        except OSError as exc:
            raise Unresolvable(f"cannot resolve {host}: {exc}") from exc
        if not found:
            raise Unresolvable(f"cannot resolve {host}: no address")
    for address in found:
        why = policy.refusal(address)
        if why is not None:
            name = "" if literal is not None else f"{host} resolves to "
            raise TargetRefused(f"{name}{address} ({why}): refused")
    return found
