"""The flash sale through the waiting room (``evently bench flash-sale --queue``), and the
multi-process load generator (``--loadgen-processes N``).

With ``--queue`` the event's queue is ``on`` and every buyer does what a browser does: join
(``POST /events/{id}/queue``), ask again after the ``poll_after_seconds`` it was given
(``GET /events/{id}/queue/{ticket}``) until admitted, sold out or expired, and once admitted
reserve with its token (a ``503 overloaded`` is retried after Retry-After, with the same
token). ``queue_p99_ms`` is the p99 of the waiting room's own answers (joins and polls);
``fairness_error`` is read from Postgres afterwards: the share of admitted places that were
admitted before an earlier place (or while an earlier place never was).

``--loadgen-processes N`` splits the buyers over N processes (each its own event loop and
httpx clients; the connections are split too) and reports the generator's CPU as a share of
its cores.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import time
import uuid
from dataclasses import asdict
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]

from bench.flash_sale import Attempt, reserve_once

QUEUE = "/api/v1/events/{event_id}/queue"


async def _timed(
    http: httpx.AsyncClient, method: str, url: str, token: str, buyer: int, kind: str
) -> tuple[Attempt, Any]:
    sent = time.time()
    t0 = time.perf_counter()
    try:
        r = await http.request(method, url, headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        latency = (time.perf_counter() - t0) * 1000
        return Attempt(buyer, sent, time.time(), latency, 0, type(exc).__name__, None, kind), None
    latency = (time.perf_counter() - t0) * 1000
    body = r.json() if r.headers.get("content-type", "").startswith("application/") else {}
    code = str(body.get("state") or body.get("code") or "")
    return Attempt(buyer, sent, time.time(), latency, r.status_code, code, None, kind), (
        body if r.status_code == 200 else None
    )


async def fire_queue(
    api_url: str,
    tokens: list[str],
    buyer_ids: list[int],
    event_id: uuid.UUID,
    connections: int,
    request_timeout: float,
    max_attempts: int = 100,
) -> list[Attempt]:
    """Every buyer joins at once (at most ``connections`` requests on the wire), then polls
    and reserves as told."""
    attempts: list[Attempt] = []
    per_client = 8
    n_clients = max(1, -(-connections // per_client))
    sems = [asyncio.Semaphore(per_client) for _ in range(n_clients)]
    limits = httpx.Limits(max_connections=per_client, max_keepalive_connections=per_client)
    clients = [
        httpx.AsyncClient(base_url=api_url, limits=limits, timeout=request_timeout)
        for _ in range(n_clients)
    ]
    base = QUEUE.format(event_id=event_id)
    try:

        async def buyer(i: int) -> None:
            http, sem = clients[i % n_clients], sems[i % n_clients]
            who, token = buyer_ids[i], tokens[i]
            state: Any = None
            for _ in range(max_attempts):  # join (retried on errors)
                async with sem:
                    attempt, state = await _timed(http, "POST", base, token, who, "join")
                attempts.append(attempt)
                if state is not None:
                    break
                await asyncio.sleep(1 + random.random())
            if state is None:
                return
            ticket = state["queue_ticket"]
            while state["state"] == "waiting":
                await asyncio.sleep(state["poll_after_seconds"] * (0.8 + 0.4 * random.random()))
                async with sem:
                    attempt, found = await _timed(
                        http, "GET", f"{base}/{ticket}", token, who, "poll"
                    )
                attempts.append(attempt)
                state = found if found is not None else state
            if state["state"] != "admitted":
                return  # sold out (a browser would offer the waitlist) or expired
            for _ in range(max_attempts):
                async with sem:
                    attempt, retry_after = await reserve_once(
                        http,
                        token,
                        event_id,
                        who,
                        request_timeout,
                        admission_token=state["admission_token"],
                    )
                attempts.append(attempt)
                if attempt.status == 503 and attempt.code == "overloaded":
                    await asyncio.sleep(retry_after * (0.5 + random.random()))
                    continue
                return

        await asyncio.gather(*(buyer(i) for i in range(len(tokens))))
    finally:
        for http in clients:
            await http.aclose()
    return attempts


def _child(args: tuple[str, list[str], list[int], str, int, float, bool, float]) -> Any:
    """One load-generator process: its share of the buyers; (attempts, its CPU seconds)."""
    api_url, tokens, ids, event_id, connections, timeout, queued, start_at = args
    from bench.flash_sale import fire

    proc = psutil.Process()

    async def run() -> list[Attempt]:
        await asyncio.sleep(max(0.0, start_at - time.time()))  # every process starts together
        if queued:
            return await fire_queue(api_url, tokens, ids, uuid.UUID(event_id), connections, timeout)
        return await fire(api_url, tokens, uuid.UUID(event_id), connections, timeout, buyer_ids=ids)

    c0 = sum(proc.cpu_times()[:2])
    attempts = asyncio.run(run())
    return [asdict(a) for a in attempts], sum(proc.cpu_times()[:2]) - c0


def fire_processes(
    processes: int,
    api_url: str,
    tokens: list[str],
    event_id: uuid.UUID,
    connections: int,
    timeout: float,
    *,
    queued: bool,
) -> tuple[list[Attempt], float, float]:
    """The buyers split over ``processes`` processes: (attempts, the generator's CPU seconds,
    its share of the cores it had: CPU / (wall x processes))."""
    ctx = multiprocessing.get_context("spawn")
    shares = [list(range(k, len(tokens), processes)) for k in range(processes)]
    start_at = time.time() + 3.0  # after the processes are up
    jobs = [
        (
            api_url,
            [tokens[i] for i in share],
            share,
            str(event_id),
            max(1, connections // processes),
            timeout,
            queued,
            start_at,
        )
        for share in shares
    ]
    with ctx.Pool(processes) as pool:
        results = pool.map(_child, jobs)
    wall = max(time.time() - start_at, 1e-9)
    attempts = [Attempt(**a) for part, _ in results for a in part]
    cpu = sum(c for _, c in results)
    return attempts, round(cpu, 3), round(cpu / (wall * processes), 3)
