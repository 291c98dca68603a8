"""The `evently` command."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.markup import escape

from cli.bench import bench_app
from cli.common import console, database, load_settings, transaction
from cli.search import search_app
from cli.seed import seed
from cli.temporal import temporal_app
from cli.tickets import tickets_app
from evently.settings import Settings

app = typer.Typer(
    help="Evently: event ticketing on Temporal + Postgres.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
users_app = typer.Typer(help="Manage accounts (admin and support accounts come only from here).")
app.add_typer(users_app, name="users")
app.add_typer(search_app, name="search")
app.add_typer(bench_app, name="bench")
app.add_typer(tickets_app, name="tickets")
app.add_typer(temporal_app, name="temporal")
app.command("seed")(seed)


@app.command()
def dev() -> None:
    """Run the whole platform on embedded Postgres, Redis and Temporal (+UI). Ctrl-C stops all."""
    from evently.infra.devstack import run_dev
    from workflows.common import SEARCH_ATTRIBUTE_TYPES

    raise typer.Exit(run_dev(load_settings(), SEARCH_ATTRIBUTE_TYPES))


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="bind address (EVENTLY_API_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (EVENTLY_API_PORT)")] = None,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """Serve the REST API against the configured servers (no embedded start)."""
    import os
    import tempfile

    import uvicorn

    settings = load_settings()
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # GET /metrics then aggregates every uvicorn worker process (fresh dir per start)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="evently-metrics-")
    if settings.metrics_port:  # the metrics on a port of their own (issue 28)
        from api.metrics import serve_metrics_port

        serve_metrics_port(host or settings.api_host, settings.metrics_port)
    uvicorn.run(
        "api.main:app",
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers,
        log_level=settings.log_level.lower(),
        access_log=False,
        # forwarded headers are read in ONE place, from EVENTLY_TRUSTED_PROXIES (api/proxies.py)
        proxy_headers=False,
        timeout_graceful_shutdown=10,
        timeout_keep_alive=int(settings.keep_alive_seconds),
    )


@app.command()
def worker(
    queues: Annotated[
        str | None, typer.Option(help="comma-separated: booking,search,payments,mail,webhooks")
    ] = None,
    max_concurrent_activities: Annotated[int | None, typer.Option()] = None,
    max_concurrent_workflow_tasks: Annotated[int | None, typer.Option()] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="serve Prometheus metrics (ours + Temporal SDK) on this port"),
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="bind address of the metrics port")] = "0.0.0.0",
) -> None:
    """Run a Temporal worker for the given task queues against the configured servers."""
    from evently.infra.logging import configure_logging
    from workers.main import parse_queues, serve

    settings = load_settings()
    updates: dict[str, object] = {}
    if max_concurrent_activities:
        updates["worker_max_concurrent_activities"] = max_concurrent_activities
    if max_concurrent_workflow_tasks:
        updates["worker_max_concurrent_workflow_tasks"] = max_concurrent_workflow_tasks
    if metrics_port:
        updates["worker_metrics_port"] = metrics_port
    settings = settings.model_copy(update=updates)
    try:
        task_queues = parse_queues(queues or settings.worker_queues)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--queues") from exc
    configure_logging(settings)
    serve(settings, task_queues, metrics_host=metrics_host)


@app.command()
def migrate(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Upgrade the database schema (Alembic) to head."""
    from evently.infra.endpoints import resolve_endpoints
    from evently.infra.migrate import upgrade

    settings = load_settings()
    upgrade(resolve_endpoints(settings).database_url, revision)
    console.print(f"[green]database at {revision}")
    if settings.bootstrap_admin_email and settings.bootstrap_admin_password:
        _bootstrap_admin(settings)


def _bootstrap_admin(settings: Settings) -> None:
    """EVENTLY_BOOTSTRAP_ADMIN_*: make sure that admin exists (docker-compose's migrate step)."""
    from evently.accounts import ensure_bootstrap_admin
    from evently.errors import EventlyError

    async def _run() -> str:
        async with transaction(settings) as session:
            return await ensure_bootstrap_admin(
                session,
                settings.bootstrap_admin_email or "",
                settings.bootstrap_admin_password or "",
            )

    email = settings.bootstrap_admin_email
    try:
        outcome = asyncio.run(_run())
    except EventlyError as exc:
        console.print(f"[red]bootstrap admin {email}: {exc.detail}")
        raise typer.Exit(1) from exc
    if outcome == "not-admin":
        console.print(f"[red]bootstrap admin {email}: a non-admin account has this email")
        raise typer.Exit(1)
    console.print(f"[green]bootstrap admin {email} {outcome}")


@app.command()
def check(
    event_id: Annotated[str | None, typer.Option(help="only this event")] = None,
    grace_seconds: Annotated[float, typer.Option(help="held past the window by more")] = 60,
) -> None:
    """Verify the booking invariants (no oversold or lost seat, every payment accounted)."""
    import uuid

    from evently.invariants import check as run_check
    from evently.invariants import scope

    settings = load_settings()
    only = uuid.UUID(event_id) if event_id else None

    async def _run() -> tuple[list[str], dict[str, int]]:
        async with database(settings) as engine, engine.connect() as conn:
            found = await run_check(conn, only, grace_seconds=grace_seconds)
            counted = await scope(conn, only)
        return [str(v) for v in found], counted

    violations, counted = asyncio.run(_run())
    for v in violations:
        # escaped: the subject id is printed in [brackets], which rich would take for markup
        console.print(f"[red]{escape(v)}")
    checked = (
        f"{counted['events']} events, {counted['bookings']} bookings "
        f"({counted['confirmed']} confirmed), {counted['payments']} payments, "
        f"{counted['invoices']} invoices and credit notes checked"
    )
    if violations:
        console.print(f"{len(violations)} violations; {checked}")
        raise typer.Exit(1)
    console.print(f"[green]all invariants hold[/green]: {checked}")


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option(prompt=True)],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    role: Annotated[str, typer.Option(help="buyer, support, admin or door")] = "buyer",
    full_name: Annotated[str, typer.Option()] = "",
) -> None:
    """Create an account with any role."""
    from evently.accounts import create_user
    from evently.errors import EventlyError

    settings = load_settings()

    async def _run() -> str:
        async with transaction(settings) as session:
            user = await create_user(session, email, password, role=role, full_name=full_name)
            return str(user.id)

    try:
        user_id = asyncio.run(_run())
    except EventlyError as exc:
        console.print(f"[red]{exc.detail}")
        raise typer.Exit(1) from exc
    console.print(f"[green]created {role} {email} ({user_id})")


@users_app.command("prune-tokens")
def users_prune_tokens(
    grace_days: Annotated[int, typer.Option(min=0, help="keep tokens expired for fewer days")] = 1,
) -> None:
    """Delete expired refresh tokens now (a Temporal Schedule runs this daily: docs/temporal.md)."""
    from evently import tokens

    settings = load_settings()

    async def _run() -> int:
        async with transaction(settings) as session:
            return await tokens.prune_expired(session, grace_days=grace_days)

    console.print(f"[green]deleted {asyncio.run(_run())} expired refresh tokens")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
