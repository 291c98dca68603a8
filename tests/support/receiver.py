"""A real HTTP receiver of organizer webhooks for the tests (plain asyncio, HTTP/1.1, one
request per connection): it verifies each Standard Webhooks signature with the library,
deduplicates on ``webhook-id`` like a careful receiver would, and can be told to be down
(port closed), fail (any status), time out (answer after the sender gave up — having processed
the message all the same) or answer 410."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

#: what to answer the n-th arrival (1-based) of a message: a status, or "slow" (process it,
#: then answer 200 only after ``slow_seconds``, when the sender has timed out)
Behaviour = Callable[[str, int], "int | str"]


@dataclass
class Arrival:
    msg_id: str
    n: int
    answer: int | str
    type: str


@dataclass
class Receiver:
    secret: str = ""
    behaviour: Behaviour = lambda msg_id, n: 200
    slow_seconds: float = 2.0
    port: int = 0
    arrivals: list[Arrival] = field(default_factory=list)
    processed: dict[str, dict[str, Any]] = field(default_factory=dict)  # deduplicated
    processed_order: list[str] = field(default_factory=list)
    duplicates: Counter[str] = field(default_factory=Counter)
    bad_signatures: int = 0
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def start(self) -> Receiver:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Down: the port refuses connections."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    def answered_2xx(self) -> Counter[str]:
        """Messages answered with a 2xx in time (a "slow" answer came after the sender gave
        up), and how often."""
        return Counter(
            a.msg_id for a in self.arrivals if isinstance(a.answer, int) and 200 <= a.answer < 300
        )

    def last_arrival(self, msg_id: str) -> Arrival:
        return [a for a in self.arrivals if a.msg_id == msg_id][-1]

    def _process(self, msg_id: str, payload: dict[str, Any]) -> None:
        if msg_id in self.processed:
            self.duplicates[msg_id] += 1  # the dedup: seen before, not processed again
            return
        self.processed[msg_id] = payload
        self.processed_order.append(msg_id)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readline()  # POST /hooks HTTP/1.1
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            try:
                payload = Webhook(self.secret).verify(body, headers)
            except WebhookVerificationError:
                self.bad_signatures += 1
                await self._answer(writer, 401)
                return
            msg_id = headers["webhook-id"]
            n = 1 + sum(1 for a in self.arrivals if a.msg_id == msg_id)
            answer = self.behaviour(msg_id, n)
            self.arrivals.append(Arrival(msg_id, n, answer, payload["type"]))
            if answer == "slow":
                self._process(msg_id, payload)  # processed, but the answer comes too late
                await asyncio.sleep(self.slow_seconds)
                await self._answer(writer, 200)
                return
            assert isinstance(answer, int)
            if 200 <= answer < 300:
                self._process(msg_id, payload)
            await self._answer(writer, answer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    async def _answer(writer: asyncio.StreamWriter, status: int) -> None:
        body = json.dumps({"status": status}).encode()
        writer.write(
            f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
            + body
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
