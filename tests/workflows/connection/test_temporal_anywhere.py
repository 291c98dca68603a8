"""Temporal anywhere (issue 33): the connection comes from Temporal's own environment
configuration (envconfig), with mTLS and API keys; EVENTLY_TEMPORAL_* still win when set.

The server that requires mTLS is the session's dev server behind a TLS-terminating proxy
(tests/support/tls.py) that demands a client certificate of a CA made here."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.service import TLSConfig

from evently.settings import Settings
from tests.support.tls import TestCA, mtls_proxy
from workflows.connection import (
    TemporalConnectionError,
    connect,
    ping,
    register_search_attributes,
    resolve_target,
)


@pytest.fixture
def pki(tmp_path: Path) -> tuple[TestCA, TestCA]:
    return TestCA(tmp_path, "Evently Test CA"), TestCA(tmp_path, "Some Other CA")


def _env(address: str, ca: TestCA, client_cert: Path, client_key: Path) -> dict[str, str]:
    return {
        "TEMPORAL_ADDRESS": address,
        "TEMPORAL_NAMESPACE": "default",
        "TEMPORAL_TLS": "true",
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(ca.files.cert),
        "TEMPORAL_TLS_CLIENT_CERT_PATH": str(client_cert),
        "TEMPORAL_TLS_CLIENT_KEY_PATH": str(client_key),
        "TEMPORAL_TLS_SERVER_NAME": "localhost",
    }


async def test_mtls_through_envconfig_connects(
    settings: Settings, pki: tuple[TestCA, TestCA], tmp_path: Path
) -> None:
    ca, _ = pki
    server, client = ca.issue("localhost", server=True), ca.issue("evently-worker", server=False)
    assert settings.temporal_address
    async with mtls_proxy(settings.temporal_address, ca, server) as (address, _):
        # no EVENTLY_TEMPORAL_ADDRESS: Temporal's variables say where and how
        plain = Settings(env="test", state_dir=tmp_path)
        target = resolve_target(
            plain, "127.0.0.1:1", env=_env(address, ca, client.cert, client.key)
        )
        assert target.address == address
        assert target.namespace == "default"
        assert isinstance(target.tls, TLSConfig)
        assert target.tls.client_cert
        assert "mTLS" in target.describe()
        temporal = await asyncio.wait_for(
            connect(target.address, target.namespace, tls=target.tls), 20
        )
        await ping(temporal)
        # `evently temporal setup`'s work, through the secured connection: idempotent
        added, existing = await register_search_attributes(temporal, {"BookingStatus": "Keyword"})
        assert added == []
        assert existing == ["BookingStatus"]


async def test_a_wrong_client_certificate_fails_clearly(
    settings: Settings, pki: tuple[TestCA, TestCA], tmp_path: Path
) -> None:
    ca, other = pki
    server = ca.issue("localhost", server=True)
    stranger = other.issue("intruder", server=False)  # a certificate of another CA
    assert settings.temporal_address
    async with mtls_proxy(settings.temporal_address, ca, server) as (address, _):
        plain = Settings(env="test", state_dir=tmp_path)
        target = resolve_target(
            plain, "127.0.0.1:1", env=_env(address, ca, stranger.cert, stranger.key)
        )
        with pytest.raises(TemporalConnectionError) as raised:
            await asyncio.wait_for(connect(target.address, target.namespace, tls=target.tls), 30)
    message = str(raised.value)
    assert address in message
    assert "mTLS" in message
    assert "cannot connect to Temporal" in message
    assert "TLS handshake failed: check the client certificate" in message


async def test_no_client_certificate_fails_clearly(
    settings: Settings, pki: tuple[TestCA, TestCA], tmp_path: Path
) -> None:
    ca, _ = pki
    server = ca.issue("localhost", server=True)
    assert settings.temporal_address
    async with mtls_proxy(settings.temporal_address, ca, server) as (address, _):
        env = {
            "TEMPORAL_ADDRESS": address,
            "TEMPORAL_TLS": "true",
            "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(ca.files.cert),
            "TEMPORAL_TLS_SERVER_NAME": "localhost",
        }
        target = resolve_target(Settings(env="test", state_dir=tmp_path), "x:1", env=env)
        with pytest.raises(TemporalConnectionError, match="cannot connect to Temporal at"):
            await asyncio.wait_for(connect(target.address, target.namespace, tls=target.tls), 30)


async def test_an_api_key_from_envconfig_reaches_the_client(
    settings: Settings, pki: tuple[TestCA, TestCA], tmp_path: Path
) -> None:
    """The dev server does not check keys: the key is asserted on the loaded configuration
    and on the connected client (it is sent as ``Authorization: Bearer`` on every call)."""
    ca, _ = pki
    server, client = ca.issue("localhost", server=True), ca.issue("evently-api", server=False)
    assert settings.temporal_address
    async with mtls_proxy(settings.temporal_address, ca, server) as (address, _):
        env = _env(address, ca, client.cert, client.key) | {"TEMPORAL_API_KEY": "evently-key-1"}
        target = resolve_target(Settings(env="test", state_dir=tmp_path), "x:1", env=env)
        assert target.api_key == "evently-key-1"
        assert "API key" in target.describe()
        assert "evently-key-1" not in target.describe()
        temporal = await asyncio.wait_for(
            connect(target.address, target.namespace, tls=target.tls, api_key=target.api_key), 20
        )
        assert temporal.api_key == "evently-key-1"
        await ping(temporal)


def test_an_api_key_alone_turns_tls_on(tmp_path: Path) -> None:
    """Temporal Cloud with an API key: two variables, TLS with the system's roots."""
    env = {
        "TEMPORAL_ADDRESS": "eu-west-1.aws.api.temporal.io:7233",
        "TEMPORAL_NAMESPACE": "evently.a1b2c",
        "TEMPORAL_API_KEY": "cloud-key",
    }
    target = resolve_target(Settings(env="test", state_dir=tmp_path), "x:1", env=env)
    assert target.tls is True
    assert target.api_key == "cloud-key"
    assert target.namespace == "evently.a1b2c"


def test_a_toml_profile_is_read_and_evently_settings_win(tmp_path: Path) -> None:
    toml = """
[profile.default]
address = "temporal.internal:7233"
namespace = "evently-prod"
api_key = "from-the-file"

[profile.default.tls]
server_name = "temporal.internal"
"""
    plain = Settings(env="test", state_dir=tmp_path)
    target = resolve_target(plain, "fallback:7233", env={}, config_source=toml)
    assert (target.address, target.namespace, target.api_key) == (
        "temporal.internal:7233",
        "evently-prod",
        "from-the-file",
    )
    assert isinstance(target.tls, TLSConfig)
    assert target.tls.domain == "temporal.internal"
    # EVENTLY_TEMPORAL_ADDRESS / _NAMESPACE, when set, win over Temporal's configuration
    ours = Settings(
        env="test", state_dir=tmp_path, temporal_address="ours:7233", temporal_namespace="ns1"
    )
    target = resolve_target(ours, "fallback:7233", env={}, config_source=toml)
    assert (target.address, target.namespace) == ("ours:7233", "ns1")
    assert target.api_key == "from-the-file"  # auth still comes from Temporal's configuration
    # nothing configured anywhere: the `evently dev` stack's address and `default`
    target = resolve_target(plain, "fallback:7233", env={}, config_source="")
    assert (target.address, target.namespace, target.tls) == ("fallback:7233", "default", False)
