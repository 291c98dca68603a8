"""A lean HTTP/1.1 client for the load generator: keep-alive connections, httptools' C parser
(the one uvicorn uses), no redirects, no cookies, no TLS, no streaming.

Why not httpx here: measured in the 20,000-buyer queued flash sale, httpx spent ~1.4 ms of CPU
per request in the load generator (94 CPU-seconds for 68,000 requests, more than the whole
stack under test) and topped out near 850 requests/s against ``GET /healthz`` — the generator,
not the API, set the pace and the latency, and on a 2-core machine it took the stack's CPU.
This client does the same requests at a fraction of that (``evently bench flash-sale`` reports
``loadgen_cpu_seconds`` and ``loadgen_healthz_rps``; docs/performance.md has the numbers).
The API's own tests keep using httpx: this is only for generating load.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httptools


class WireError(Exception):
    """The connection failed or closed before a whole response arrived."""


class WireTimeout(WireError):
    pass


@dataclass
class WireResponse:
    status_code: int
    headers: dict[str, str]
    content: bytes

    def json(self) -> Any:
        return jsonlib.loads(self.content)


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[WireResponse] | None = None
        self.closed = False
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._keep_alive = True

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(WireError(f"bad response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(WireError("connection closed"))

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._headers = {}
        self._body = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(
                WireResponse(self.parser.get_status_code(), self._headers, b"".join(self._body))
            )
        if not self._keep_alive:
            self.close()

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def send(self, raw: bytes) -> asyncio.Future[WireResponse]:
        assert self.transport is not None
        assert self.waiter is None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return self.waiter


class WireClient:
    """At most ``connections`` requests at once to one ``http://host:port`` origin, each on a
    kept-alive connection of its own. ``request`` raises WireError (or WireTimeout)."""

    def __init__(self, base_url: str, connections: int, timeout: float = 30.0) -> None:
        url = urlsplit(base_url)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"only http:// origins: {base_url}")
        self.host, self.port = url.hostname, url.port or 80
        self._host_header = f"{self.host}:{self.port}".encode()
        self.timeout = timeout
        self._slots = asyncio.Semaphore(connections)
        self._idle: list[_Connection] = []
        self._all: set[_Connection] = set()

    async def _connection(self) -> _Connection:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
            self._all.discard(conn)
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(_Connection, self.host, self.port)
        except OSError as exc:
            raise WireError(f"cannot connect: {exc}") from exc
        self._all.add(conn)
        return conn

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        json: Any = None,
        timeout: float | None = None,  # noqa: ASYNC109 (one timer per request, no task)
    ) -> WireResponse:
        body = b"" if json is None else jsonlib.dumps(json, separators=(",", ":")).encode()
        head = [f"{method} {path} HTTP/1.1".encode(), b"Host: " + self._host_header]
        for name, value in (headers or {}).items():
            head.append(f"{name}: {value}".encode())
        if json is not None:
            head.append(b"Content-Type: application/json")
        if body or method in ("POST", "PUT", "PATCH"):
            head.append(b"Content-Length: " + str(len(body)).encode())
        raw = b"\r\n".join(head) + b"\r\n\r\n" + body
        async with self._slots:
            conn = await self._connection()
            waiter = conn.send(raw)
            loop = asyncio.get_running_loop()
            timer = loop.call_later(
                self.timeout if timeout is None else timeout,
                _expire,
                waiter,
            )
            try:
                response = await waiter
            except BaseException:
                conn.close()
                self._all.discard(conn)
                raise
            finally:
                timer.cancel()
            if conn.closed:
                self._all.discard(conn)
            else:
                self._idle.append(conn)
            return response

    async def get(self, path: str, **kw: Any) -> WireResponse:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> WireResponse:
        return await self.request("POST", path, **kw)

    async def aclose(self) -> None:
        for conn in list(self._all):
            conn.close()
        self._all.clear()
        self._idle.clear()


def _expire(waiter: asyncio.Future[WireResponse]) -> None:
    if not waiter.done():
        waiter.set_exception(WireTimeout("no response in time"))
