"""A real SMTP server for development and tests: every message it receives becomes an ``.eml``.

The file name comes from the ``Message-ID``, so a message delivered again (a retried send of
the same notification) overwrites its file: the number of files is the number of distinct
messages. ``evently dev`` runs one in its state dir; tests start one on a free port::

    with dev_mail_server(tmp_path / "mail") as server:
        await send(message, server.url)
        assert server.messages() == [...]
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+=-]")


def eml_name(content: bytes) -> str:
    """``<id@domain>`` → ``id@domain.eml``; a message without a Message-ID is named by its hash."""
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(content)
    message_id = (headers.get("Message-ID") or "").strip().strip("<>").strip()
    if not message_id:
        return f"no-message-id-{hashlib.sha256(content).hexdigest()[:32]}.eml"
    name = _UNSAFE.sub("_", message_id)[:200].lstrip(".")
    return f"{name or 'message'}.eml"


class EmlDirectoryHandler:
    """aiosmtpd handler: write each message, as received, to ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.received = 0  # deliveries, re-deliveries included
        #: deliveries per Message-ID (file name): > 1 means the same message arrived again
        self.deliveries: Counter[str] = Counter()
        self._lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        content = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogateescape")
        name = eml_name(content)
        path = self.directory / name
        # write then rename: a reader never sees half a message, a re-delivery replaces it
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".incoming-", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.replace(tmp, path)
        with self._lock:
            self.received += 1
            self.deliveries[name.removesuffix(".eml")] += 1
        return "250 Message accepted for delivery"


def _accept_any_login(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    return AuthResult(success=True)


class _Controller(Controller):
    """aiosmtpd's Controller, able to listen on port 0 (the OS picks a free port)."""

    def _trigger_server(self) -> None:
        if self.port == 0 and isinstance(self.server, asyncio.Server):
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class DevMailServer:
    """Start/stop a local SMTP server that keeps every message as ``<Message-ID>.eml``.

    Port 0 picks a free port on start; the port is then kept, so ``stop()`` and ``start()``
    again bring the server back where clients expect it.
    """

    def __init__(
        self,
        directory: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        accept_any_login: bool = True,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.handler = EmlDirectoryHandler(self.directory)
        self._host = host
        self._port = port
        self._accept_any_login = accept_any_login
        self._controller: _Controller | None = None

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        """The port listened on (known once started; kept for a restart)."""
        return self._port

    @property
    def url(self) -> str:
        """What to put in ``EVENTLY_SMTP_URL``."""
        return f"smtp://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        if self._controller is not None:
            return
        auth: dict[str, Any] = (
            {"authenticator": _accept_any_login, "auth_require_tls": False}
            if self._accept_any_login
            else {}
        )
        # a fresh controller each time: aiosmtpd closes its event loop on stop()
        controller = _Controller(
            self.handler,
            hostname=self._host,
            port=self._port,
            data_size_limit=50 * 1024 * 1024,
            **auth,
        )
        controller.start()
        self._port = int(controller.port)
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def paths(self) -> list[Path]:
        return sorted(self.directory.glob("*.eml"))

    def messages(self) -> list[EmailMessage]:
        """Every distinct message received so far, parsed."""
        parser = BytesParser(policy=policy.default)
        out = []
        for path in self.paths():
            out.append(parser.parsebytes(path.read_bytes()))
        return out

    def __enter__(self) -> DevMailServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def dev_mail_server(
    directory: Path, *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[DevMailServer]:
    server = DevMailServer(directory, host=host, port=port)
    server.start()
    try:
        yield server
    finally:
        server.stop()
