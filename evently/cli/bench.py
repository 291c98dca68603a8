"""`evently bench ...`: benchmarks, each printing ONE JSON line of results on stdout."""

from __future__ import annotations

import json
from typing import Annotated

import typer

bench_app = typer.Typer(
    help="Benchmarks: each prints one JSON line (progress goes to stderr).", no_args_is_help=True
)


@bench_app.command("search")
def search(
    events: Annotated[int, typer.Option(min=1, help="events to generate and index")] = 10_000,
    queries: Annotated[int, typer.Option(min=1, help="timed requests")] = 2_000,
    concurrency: Annotated[int, typer.Option(min=1, max=256)] = 8,
    configured: Annotated[
        bool,
        typer.Option(help="use the configured servers instead of a throwaway embedded stack"),
    ] = False,
) -> None:
    """Index N generated events, run a mixed search/suggestion query set: queries/s, p50/p99."""
    from bench.search import run_search_bench
    from evently.cli.main import load_settings

    result = run_search_bench(
        load_settings(),
        events=events,
        queries=queries,
        concurrency=concurrency,
        configured=configured,
    )
    typer.echo(json.dumps(result))
