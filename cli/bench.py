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
    from cli.common import load_settings

    result = run_search_bench(
        load_settings(),
        events=events,
        queries=queries,
        concurrency=concurrency,
        configured=configured,
    )
    typer.echo(json.dumps(result))


@bench_app.command("flash-sale")
def flash_sale(
    buyers: Annotated[int, typer.Option(min=1, help="buyers, one reserve request each")] = 5_000,
    seats: Annotated[int, typer.Option(min=1, help="capacity of the event")] = 500,
    connections: Annotated[
        int, typer.Option(min=1, max=1000, help="HTTP connections of the load generator")
    ] = 100,
    api_processes: Annotated[int, typer.Option(min=1, help="uvicorn worker processes")] = 1,
    workers: Annotated[int, typer.Option(min=1, help="Temporal worker processes")] = 1,
    max_in_flight: Annotated[
        int | None, typer.Option(help="EVENTLY_RESERVE_MAX_IN_FLIGHT for the API")
    ] = None,
    queue: Annotated[
        bool,
        typer.Option(
            help="through the waiting room: join, poll as told, reserve with the admission "
            "token; adds queue_p99_ms and fairness_error"
        ),
    ] = False,
    loadgen_processes: Annotated[
        int, typer.Option(min=1, help="load-generator processes (buyers split over them)")
    ] = 1,
    seated: Annotated[
        bool,
        typer.Option(
            help="reserved seating (issue 34): a plan of --seats seats, buyers ask for pairs "
            "(best available, a share for specific seats); adds seats_taken and double_sold"
        ),
    ] = False,
    quantity: Annotated[
        int,
        typer.Option(
            min=1,
            max=10,
            help="seats per buyer of a general-admission sale (2: the seated "
            "sale's pairs, for a like-for-like comparison)",
        ),
    ] = 1,
    pay: Annotated[
        bool,
        typer.Option(
            help="after the sale (not measured in it), every buyer who holds pays by card "
            "(issue 31): adds paid, invoices, invoice_gaps and pay_p50_ms/pay_p99_ms; the "
            "invariant check then reconciles the money too"
        ),
    ] = False,
) -> None:
    """B buyers race for C seats through the real HTTP API: holds/s, latency, CPU per hold,
    oversold and spurious rejections, and the Postgres ceiling measured in the same run."""
    from bench.flash_sale import run_flash_sale

    result = run_flash_sale(
        buyers=buyers,
        seats=seats,
        connections=connections,
        api_processes=api_processes,
        workers=workers,
        max_in_flight=max_in_flight,
        queue=queue,
        loadgen_processes=loadgen_processes,
        seated=seated,
        quantity=quantity,
        pay=pay,
    )
    typer.echo(json.dumps(result))


@bench_app.command("seat-map")
def seat_map(
    seats: Annotated[int, typer.Option(min=1, help="seats of the plan")] = 50_000,
    requests: Annotated[int, typer.Option(min=1, help="GET /events/{id}/seats requests")] = 200,
    blocked_share: Annotated[
        float, typer.Option(min=0, max=1, help="share of seats out of the free pool, 2nd pass")
    ] = 0.5,
) -> None:
    """A stadium's plan (issue 34): import time, GET /seats size (gzip) and p99 latency."""
    from bench.seat_map import run_seat_map

    typer.echo(
        json.dumps(run_seat_map(seats=seats, requests=requests, blocked_share=blocked_share))
    )


@bench_app.command("steady")
def steady(
    rate: Annotated[float, typer.Option(min=0.1, help="new bookings per second")] = 8.0,
    seconds: Annotated[float, typer.Option(min=1, help="how long the load is offered")] = 30.0,
    pay_ratio: Annotated[
        float, typer.Option(min=0, max=1, help="share of holds that pay; the rest expire")
    ] = 0.5,
    hold_seconds: Annotated[int, typer.Option(min=1, help="EVENTLY_HOLD_SECONDS")] = 5,
    cost_samples: Annotated[
        int, typer.Option(min=1, help="bookings counted one by one for the cost")
    ] = 20,
) -> None:
    """Fixed offered load of reserve→pay and reserve→expire: confirmed bookings/s, p99 per
    step, and the counted cost of one confirmed booking (Postgres statements, Redis commands,
    Temporal history events)."""
    from bench.steady import run_steady

    result = run_steady(
        rate=rate,
        seconds=seconds,
        pay_ratio=pay_ratio,
        hold_seconds=hold_seconds,
        cost_samples=cost_samples,
    )
    typer.echo(json.dumps(result))
