"""The client address behind trusted reverse proxies (api/proxies.py): the header parsing on its
own, then the login rate limit of a real server process over TCP, which keys on that address."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterator

import httpx
import pytest

from api.proxies import TrustedProxies, forwarded_client, hop_address
from evently.settings import Settings, parse_networks
from tests.support.factories import unique_email
from tests.support.servers import api_process

LIMIT = 3  # login attempts per window per client address in the server processes below


def _trusting(spec: str) -> TrustedProxies:
    async def app(scope: object, receive: object, send: object) -> None:
        raise AssertionError("not called")

    return TrustedProxies(app, parse_networks(spec), "x-forwarded-for")


def _h(**headers: str) -> list[tuple[bytes, bytes]]:
    return [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("hop", "address"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7:4711 ", "203.0.113.7"),
        ('"[2001:DB8::1]:4711"', "2001:db8::1"),
        ("2001:db8:0::1", "2001:db8::1"),
        ("unknown", None),
        ("_hidden", None),
        ("", None),
        ("[2001:db8::1", None),
    ],
)
def test_a_hop_is_a_normalized_ip_or_nothing(hop: str, address: str | None) -> None:
    assert hop_address(hop) == address


@pytest.mark.unit
def test_the_client_is_the_right_most_hop_that_is_not_a_trusted_proxy() -> None:
    proxies = _trusting("10.0.0.0/8, 192.0.2.1")
    xff = _h(x_forwarded_for="6.6.6.6, 203.0.113.7, 10.1.2.3", x_forwarded_proto="https")
    assert forwarded_client(xff, "x-forwarded-for", proxies.trusted) == ("203.0.113.7", "https")
    # several header lines are one list, in order
    two = _h(x_forwarded_for="6.6.6.6") + _h(x_forwarded_for="203.0.113.9")
    assert forwarded_client(two, "x-forwarded-for", proxies.trusted) == ("203.0.113.9", None)
    # every hop a proxy: the left-most one is as far as we can see
    inner = _h(x_forwarded_for="10.0.0.5, 192.0.2.1")
    assert forwarded_client(inner, "x-forwarded-for", proxies.trusted) == ("10.0.0.5", None)
    # the right-most untrusted hop is not an address: keep the peer
    bad = _h(x_forwarded_for="203.0.113.7, unknown")
    assert forwarded_client(bad, "x-forwarded-for", proxies.trusted) == (None, None)
    assert forwarded_client([], "x-forwarded-for", proxies.trusted) == (None, None)


@pytest.mark.unit
def test_rfc7239_forwarded_is_read_only_when_configured() -> None:
    proxies = _trusting("10.0.0.0/8")
    headers = _h(
        forwarded='for=6.6.6.6, for="[2001:db8::17]:4711";proto=https;by=10.0.0.1, for=10.0.0.2',
        x_forwarded_for="198.51.100.1",
    )
    assert forwarded_client(headers, "forwarded", proxies.trusted) == ("2001:db8::17", "https")
    assert forwarded_client(headers, "x-forwarded-for", proxies.trusted) == ("198.51.100.1", None)


@pytest.mark.unit
async def test_only_a_trusted_peer_changes_the_client() -> None:
    seen: list[tuple[object, object]] = []

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        seen.append((scope["client"], scope["scheme"]))

    proxies = TrustedProxies(app, parse_networks("192.0.2.1"), "x-forwarded-for")  # type: ignore[arg-type]
    headers = _h(x_forwarded_for="203.0.113.7", x_forwarded_proto="https")
    for peer in ("192.0.2.1", "192.0.2.2"):
        scope = {"type": "http", "client": (peer, 5000), "scheme": "http", "headers": headers}
        await proxies(scope, None, None)  # type: ignore[arg-type]
    assert seen == [(("203.0.113.7", 0), "https"), (("192.0.2.2", 5000), "http")]


@pytest.mark.unit
def test_a_typo_in_the_setting_is_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="not an IP address or CIDR"):
        Settings(trusted_proxies="10.0.0.0/8, proxy.internal", _env_file=None)  # type: ignore[call-arg]
    assert Settings(_env_file=None).trusted_proxy_networks == ()  # type: ignore[call-arg]


# ---- over a real server process --------------------------------------------------------------


def _loopback() -> str:
    """A loopback source address of our own (all of 127/8 is local on Linux): its per-IP
    rate-limit counters start at zero, whatever other tests sent from 127.0.0.1."""
    n = uuid.uuid4().int
    return f"127.{n % 250 + 1}.{(n >> 8) % 250 + 1}.{(n >> 16) % 250 + 1}"


def _public() -> str:
    return str(ipaddress.ip_address(0xCB007100 + uuid.uuid4().int % 250 + 1))  # 203.0.113.x


def _client(url: str, source: str) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=url, transport=transport, timeout=30)


def _login(client: httpx.Client, forwarded_for: str) -> int:
    r = client.post(
        "/api/v1/auth/login",
        json={"email": unique_email("proxy"), "password": "not-the-password"},
        headers={"X-Forwarded-For": forwarded_for},
    )
    assert r.status_code in (401, 429), r.text
    return r.status_code


@pytest.fixture(scope="module")
def proxy_address() -> str:
    return _loopback()


@pytest.fixture(scope="module")
def behind_proxy(settings: Settings, proxy_address: str) -> Iterator[str]:
    with api_process(
        settings,
        EVENTLY_TRUSTED_PROXIES=f"{proxy_address}, 10.0.0.0/8",
        EVENTLY_LOGIN_RATE_LIMIT=str(LIMIT),
        EVENTLY_PASSWORD_HASH_PROFILE="fast",
    ) as url:
        yield url


def test_behind_a_trusted_proxy_each_client_has_its_own_budget(
    behind_proxy: str, proxy_address: str
) -> None:
    first, second = _public(), f"198.51.100.{uuid.uuid4().int % 250 + 1}"
    with _client(behind_proxy, proxy_address) as proxy:
        # what the client wrote left of the proxy's hop changes every time: it is not the key
        assert [_login(proxy, f"{_public()}, {first}, 10.0.0.9") for _ in range(LIMIT)] == [
            401
        ] * LIMIT
        assert _login(proxy, f"{_public()}, {first}") == 429
        assert [_login(proxy, second) for _ in range(LIMIT)] == [401] * LIMIT
        assert _login(proxy, second) == 429


def test_an_untrusted_peer_cannot_choose_its_address(behind_proxy: str) -> None:
    with _client(behind_proxy, _loopback()) as direct:
        assert [_login(direct, _public()) for _ in range(LIMIT)] == [401] * LIMIT
        assert _login(direct, _public()) == 429


def test_with_no_trusted_proxy_forwarded_headers_are_ignored(settings: Settings) -> None:
    with (
        api_process(
            settings,
            EVENTLY_LOGIN_RATE_LIMIT=str(LIMIT),
            EVENTLY_PASSWORD_HASH_PROFILE="fast",
            # what uvicorn would otherwise trust by default (FORWARDED_ALLOW_IPS): not used
            FORWARDED_ALLOW_IPS="*",
        ) as url,
        _client(url, _loopback()) as client,
    ):
        assert [_login(client, _public()) for _ in range(LIMIT)] == [401] * LIMIT
        assert _login(client, _public()) == 429
