"""The Temporal connection every workflow client uses: where and how to connect (Temporal's
own environment configuration, TLS/mTLS, API key), the pydantic data converter with the
payload codec when keys are configured, lazily connected so a process starts (and reports
not-ready) while Temporal is still down.

With the workflow clients (``workflows/<process>/client.py``) and the worker, the only code
that imports ``temporalio.client``.

Where and how (docs/temporal.md, "Connecting"), first found wins:

- address: ``EVENTLY_TEMPORAL_ADDRESS`` > Temporal's environment configuration
  (``TEMPORAL_ADDRESS``, else the TOML profile: ``TEMPORAL_CONFIG_FILE`` or
  ``~/.config/temporalio/temporal.toml``, profile ``TEMPORAL_PROFILE`` or ``default``) >
  the ``evently dev`` stack on the state dir > ``127.0.0.1:EVENTLY_TEMPORAL_PORT``;
- namespace: ``EVENTLY_TEMPORAL_NAMESPACE`` when set > ``TEMPORAL_NAMESPACE`` / the profile >
  ``default``;
- TLS, client certificate (mTLS), API key and gRPC metadata: Temporal's environment
  configuration only (``TEMPORAL_TLS*``, ``TEMPORAL_API_KEY``, ``TEMPORAL_GRPC_META_*``, or
  the profile's ``[profile.x.tls]``); an API key turns TLS on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from temporalio.client import Client, Interceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec
from temporalio.envconfig import ClientConfigProfile
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from workflows.codec import codec_from_spec

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from evently.settings import Settings

TemporalClient = Client  # the type API dependencies and activity classes are given


class TemporalConnectionError(Exception):
    """Temporal refused or could not be reached; the message says where and how we tried."""


@dataclass(frozen=True)
class TemporalTarget:
    """Where and how to connect (from settings + Temporal's environment configuration)."""

    address: str
    namespace: str
    tls: bool | TLSConfig = False
    api_key: str | None = None
    rpc_metadata: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for logs and errors (never the key or certificates themselves)."""
        if isinstance(self.tls, TLSConfig):
            tls = "mTLS" if self.tls.client_cert else "TLS"
            if self.tls.server_root_ca_cert:
                tls += " (own CA)"
        else:
            tls = "TLS" if self.tls else "plaintext"
        auth = ", API key" if self.api_key else ""
        return f"{self.address} namespace={self.namespace} {tls}{auth}"


def resolve_target(
    settings: Settings,
    fallback_address: str,
    *,
    env: Mapping[str, str] | None = None,
    config_source: str | None = None,
) -> TemporalTarget:
    """The connection described by the settings and Temporal's environment configuration
    (module docstring). ``env``/``config_source`` replace the process environment / the TOML
    file (tests)."""
    profile = ClientConfigProfile.load(override_env_vars=env, config_source=config_source)
    cfg = profile.to_client_connect_config()
    address = settings.temporal_address or cfg.get("target_host") or fallback_address
    if "temporal_namespace" in settings.model_fields_set:
        namespace = settings.temporal_namespace
    else:
        namespace = cfg.get("namespace") or settings.temporal_namespace
    return TemporalTarget(
        address=address,
        namespace=namespace,
        tls=cfg.get("tls", False),
        api_key=cfg.get("api_key"),
        rpc_metadata=dict(cfg.get("rpc_metadata") or {}),
    )


def data_converter(codec: PayloadCodec | None = None) -> DataConverter:
    """The pydantic data converter, with the payload codec (encryption) when given."""
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec)


def settings_codec(settings: Settings) -> PayloadCodec | None:
    """The payload codec ``EVENTLY_TEMPORAL_CODEC_KEYS`` configures (None: no encryption)."""
    keys = settings.temporal_codec_keys
    return codec_from_spec(keys.get_secret_value() if keys is not None else None)


# How the SDK's core words a TLS connection the server would not have. Under TLS 1.3 the server
# checks the client certificate after the client has finished its side of the handshake, so a
# refused certificate can also arrive as the first call's connection being closed ("operation
# was canceled ... connection closed"), not as a handshake error: it did in CI.
_TLS_REFUSED = ("transport error", "TLS", "certif", "connection closed")


async def connect(
    address: str,
    namespace: str,
    *,
    lazy: bool = False,
    runtime: Runtime | None = None,
    interceptors: list[Interceptor] | None = None,
    tracer: Tracer | None = None,
    tls: bool | TLSConfig = False,
    api_key: str | None = None,
    rpc_metadata: Mapping[str, str] | None = None,
    codec: PayloadCodec | None = None,
) -> Client:
    """``tracer`` (tracing on, evently/infra/tracing.py) adds temporalio's tracing interceptor:
    client calls get spans and carry the trace in their headers, and every worker built on
    this client traces its workflows and activities. Without it nothing is added.

    ``codec`` encrypts every payload (workflows/codec.py); every worker built on this client
    uses it too. A refused connection raises :class:`TemporalConnectionError` naming the
    target and the TLS/auth used."""
    chain = list(interceptors or [])
    if tracer is not None:
        from temporalio.contrib.opentelemetry import TracingInterceptor

        chain.insert(0, TracingInterceptor(tracer))  # outermost: the others run in its span
    target = TemporalTarget(address, namespace, tls, api_key, dict(rpc_metadata or {}))
    try:
        return await Client.connect(
            address,
            namespace=namespace,
            data_converter=data_converter(codec),
            lazy=lazy,
            runtime=runtime,
            interceptors=chain,
            tls=tls,
            api_key=api_key,
            rpc_metadata=dict(rpc_metadata or {}),
        )
    except RuntimeError as exc:  # the SDK's core reports connection failures so
        hint = ""
        if tls is not False and any(w in str(exc) for w in _TLS_REFUSED):
            hint = (
                " — the TLS handshake failed: check the client certificate and key"
                " (TEMPORAL_TLS_CLIENT_CERT_*/KEY_*, signed by a CA the server trusts) and the"
                " server CA / name (TEMPORAL_TLS_SERVER_CA_CERT_*, TEMPORAL_TLS_SERVER_NAME)"
            )
        raise TemporalConnectionError(
            f"cannot connect to Temporal at {target.describe()}{hint}: {exc}"
        ) from exc


async def connect_configured(
    settings: Settings,
    fallback_address: str,
    *,
    lazy: bool = False,
    runtime: Runtime | None = None,
    interceptors: list[Interceptor] | None = None,
    tracer: Tracer | None = None,
) -> Client:
    """Connect as the settings and Temporal's environment configuration say (module
    docstring), with the settings' payload codec: what the API, the workers and the CLI use.
    ``fallback_address`` is the ``evently dev`` stack's (``resolve_endpoints``)."""
    target = resolve_target(settings, fallback_address)
    return await connect(
        target.address,
        target.namespace,
        lazy=lazy,
        runtime=runtime,
        interceptors=interceptors,
        tracer=tracer,
        tls=target.tls,
        api_key=target.api_key,
        rpc_metadata=target.rpc_metadata,
        codec=settings_codec(settings),
    )


_INDEXED_TYPES = {  # the names `temporal server start-dev --search-attribute` takes
    "Text": "TEXT",
    "Keyword": "KEYWORD",
    "Int": "INT",
    "Double": "DOUBLE",
    "Bool": "BOOL",
    "Datetime": "DATETIME",
    "KeywordList": "KEYWORD_LIST",
}


class SearchAttributeConflict(Exception):
    """A custom search attribute exists on the namespace with another type."""


async def register_search_attributes(
    client: Client, types: Mapping[str, str], namespace: str | None = None
) -> tuple[list[str], list[str]]:
    """Register the custom search attributes ``types`` (name → ``Keyword``, ...) on a
    self-hosted cluster's namespace, idempotently: returns (added, already there). An
    attribute present with another type raises :class:`SearchAttributeConflict`. (Temporal
    Cloud refuses the operator API: ``tcld`` or the UI there, docs/temporal.md.)"""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest,
        ListSearchAttributesRequest,
    )

    ns = namespace or client.namespace
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=ns)
    )
    present = dict(listed.custom_attributes)
    missing: dict[str, IndexedValueType.ValueType] = {}
    existing = []
    for name, kind in types.items():
        wanted = IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{_INDEXED_TYPES[kind]}")
        if name in present:
            if present[name] != wanted:
                raise SearchAttributeConflict(
                    f"search attribute {name} exists on {ns} as "
                    f"{IndexedValueType.Name(present[name])}, Evently needs {kind}"
                )
            existing.append(name)
        else:
            missing[name] = wanted
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=ns, search_attributes=missing)
        )
    return sorted(missing), sorted(existing)


async def ping(client: Client) -> None:
    """Is the Temporal frontend answering? (readiness)"""
    from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

    await client.workflow_service.get_system_info(GetSystemInfoRequest())
