"""`evently temporal ...`: connect to any Temporal (self-hosted, secured, Cloud), register the
custom search attributes, make payload-encryption keys (docs/temporal.md)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from cli.common import console, load_settings

temporal_app = typer.Typer(
    help="Temporal: where Evently connects, search attributes, payload encryption keys.",
    no_args_is_help=True,
)

CLOUD_STEPS = """\
Temporal Cloud does not take search attributes through the operator API. Add each one once,
with tcld (https://docs.temporal.io/cloud/tcld):

  tcld login
{commands}
or in the Cloud UI: Namespaces → {namespace} → Custom Search Attributes → Add.
Then connect with an API key or mTLS (docs/temporal.md, "Temporal Cloud"):
  TEMPORAL_ADDRESS=<namespace>.<account>.tmprl.cloud:7233   (mTLS)
  TEMPORAL_ADDRESS=<region>.<cloud>.api.temporal.io:7233     (API key)
  TEMPORAL_NAMESPACE=<namespace>.<account>
  TEMPORAL_API_KEY=...  or  TEMPORAL_TLS_CLIENT_CERT_PATH=... TEMPORAL_TLS_CLIENT_KEY_PATH=...
"""


def cloud_steps(namespace: str, types: dict[str, str]) -> str:
    commands = "".join(
        f"  tcld namespace search-attributes add --namespace {namespace} "
        f'--search-attribute "{name}={kind}"\n'
        for name, kind in types.items()
    )
    return CLOUD_STEPS.format(commands=commands, namespace=namespace)


def _target_line() -> tuple[str, str]:
    from evently.infra.endpoints import resolve_endpoints
    from workflows.connection import resolve_target

    settings = load_settings()
    target = resolve_target(settings, resolve_endpoints(settings).temporal_address)
    return target.describe(), target.namespace


@temporal_app.command("setup")
def setup(
    cloud: Annotated[
        bool, typer.Option(help="only print the Temporal Cloud steps (tcld / UI)")
    ] = False,
) -> None:
    """Register Evently's custom search attributes on the namespace (self-hosted; idempotent:
    safe to run on every deploy), or print the Temporal Cloud steps."""
    from evently.infra.endpoints import resolve_endpoints
    from workflows.common import SEARCH_ATTRIBUTE_TYPES
    from workflows.connection import (
        SearchAttributeConflict,
        TemporalConnectionError,
        connect_configured,
        register_search_attributes,
    )

    described, namespace = _target_line()
    if cloud:
        typer.echo(cloud_steps(namespace, SEARCH_ATTRIBUTE_TYPES))
        return
    settings = load_settings()

    async def _run() -> tuple[list[str], list[str]]:
        client = await asyncio.wait_for(
            connect_configured(settings, resolve_endpoints(settings).temporal_address), 20
        )
        return await asyncio.wait_for(
            register_search_attributes(client, SEARCH_ATTRIBUTE_TYPES), 30
        )

    console.print(f"Temporal: {described}")
    try:
        added, existing = asyncio.run(_run())
    except (TemporalConnectionError, SearchAttributeConflict, TimeoutError) as exc:
        console.print(f"[red]{exc or 'timed out'}")
        raise typer.Exit(1) from exc
    except Exception as exc:  # the operator API refused: Temporal Cloud, or no permission
        console.print(f"[red]registering search attributes failed: {exc}")
        typer.echo(cloud_steps(namespace, SEARCH_ATTRIBUTE_TYPES))
        raise typer.Exit(1) from exc
    for name in added:
        console.print(f"[green]added {name} ({SEARCH_ATTRIBUTE_TYPES[name]})")
    for name in existing:
        console.print(f"{name} already registered")
    console.print("[green]search attributes ready")


@temporal_app.command("config")
def config() -> None:
    """Print where and how Evently connects (never the key or certificates)."""
    described, _ = _target_line()
    typer.echo(described)


@temporal_app.command("keygen")
def keygen(
    kid: Annotated[str, typer.Argument(help="key id stored with each payload, e.g. 2026-12")],
) -> None:
    """A new payload-encryption key entry for EVENTLY_TEMPORAL_CODEC_KEYS (put it FIRST; keep
    the old ones after it while histories encrypted with them are open or retained)."""
    from workflows.codec import new_key_spec

    typer.echo(new_key_spec(kid))
