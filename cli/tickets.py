"""`evently tickets`: the ticket signing key."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import console, load_settings

tickets_app = typer.Typer(help="Ticket signing keys (Ed25519) and secrets.", no_args_is_help=True)


@tickets_app.command("keygen")
def keygen() -> None:
    """Print a fresh signing key for EVENTLY_TICKET_SIGNING_KEY and its public key."""
    from evently.tickets.signing import generate_keypair, key_id, private_key_b64, public_key_b64

    private, public = generate_keypair()
    print(f"EVENTLY_TICKET_SIGNING_KEY={private_key_b64(private)}")  # noqa: T201
    console.print(
        f"public key {public_key_b64(public)} (key id {key_id(public)}); scanners fetch it from "
        "GET /api/v1/checkin/keys. Keep the old public key in EVENTLY_TICKET_VERIFY_KEYS while "
        "tickets signed with it are still out."
    )


@tickets_app.command("verify")
def verify(secret: Annotated[str, typer.Argument(help="a scanned EVT1.… secret")]) -> None:
    """Check a ticket secret with the configured keys (offline: no database)."""
    from evently.tickets.signing import InvalidTicket
    from evently.tickets.store import signer

    try:
        claims = signer(load_settings()).verify(secret)
    except InvalidTicket as exc:
        console.print(f"[red]invalid: {exc}")
        raise typer.Exit(1) from exc
    console.print(
        f"[green]valid signature[/]: ticket {claims.ticket_id}, event {claims.event_id}, "
        f"seat {claims.seat}, issued {claims.issued_at.isoformat()}"
    )
