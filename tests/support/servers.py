"""`evently api` as a real server process (uvicorn over TCP) on the session's servers: for tests
of what only a real server shows (answers sent before a commit, the OpenAPI conformance); and
any ASGI app served by uvicorn inside the test's event loop (``serve_app``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from evently.infra.embedded import free_port
from evently.settings import Settings


class ApiURL(str):
    """The base URL of a running API process; ``pid``: the process serving it (one worker)."""

    pid: int


@contextlib.contextmanager
def api_process(settings: Settings, *, workers: int = 1, **env: str) -> Iterator[ApiURL]:
    """Start the API on a free port; yield its base URL; stop it. ``env``: extra EVENTLY_*."""
    port = free_port()
    full = dict(os.environ)
    full.update(
        {
            "EVENTLY_DATABASE_URL": settings.database_url or "",
            "EVENTLY_REDIS_URL": settings.redis_url or "",
            "EVENTLY_TEMPORAL_ADDRESS": settings.temporal_address or "",
            "EVENTLY_JWT_SECRET": settings.jwt_secret,
            "EVENTLY_LOG_FORMAT": "json",
            "EVENTLY_LOG_LEVEL": "WARNING",
            "EVENTLY_STATE_DIR": str(settings.state_path),
            # test clients send hundreds of requests from one address
            "EVENTLY_LOGIN_RATE_LIMIT": "1000000",
            "EVENTLY_REGISTER_RATE_LIMIT": "1000000",
            "EVENTLY_RESERVE_RATE_LIMIT": "1000000",
            **env,
        }
    )
    log = Path(tempfile.mkdtemp(prefix="evently-api-")) / "api.log"
    args = [sys.executable, "-m", "cli.main", "api", "--port", str(port)]
    if workers > 1:
        args += ["--workers", str(workers)]
    with log.open("ab") as out:
        proc = subprocess.Popen(args, env=full, stdout=out, stderr=subprocess.STDOUT)
    url = ApiURL(f"http://127.0.0.1:{port}")
    url.pid = proc.pid
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextlib.asynccontextmanager
async def serve_app(app: Any, port: int = 0) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn over TCP in this event loop, on 127.0.0.1 (``port`` 0: a
    free one); yield its base URL; stop it."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            assert not task.done(), "uvicorn stopped"
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
