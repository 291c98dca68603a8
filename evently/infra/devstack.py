"""`evently dev`: the whole platform on embedded servers, one command, clean Ctrl-C."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.console import Console

from evently.infra.embedded import (
    EmbeddedPostgres,
    EmbeddedRedis,
    EmbeddedTemporal,
    StackInfo,
    _stop_pid,
    port_open,
)
from evently.settings import Settings

if TYPE_CHECKING:
    from evently.mail.devserver import DevMailServer

console = Console(stderr=True)


@dataclass
class EmbeddedStack:
    """The embedded servers for one state dir; any server whose URL is configured is skipped."""

    settings: Settings
    temporal_ui: bool = True
    temporal_port: int | None = None
    temporal_ui_port: int | None = None
    temporal_persist: bool = True
    # name -> type of the custom search attributes the Temporal dev server registers
    search_attributes: dict[str, str] = field(default_factory=dict)
    postgres: EmbeddedPostgres | None = field(init=False, default=None)
    redis: EmbeddedRedis | None = field(init=False, default=None)
    temporal: EmbeddedTemporal | None = field(init=False, default=None)

    def start(self) -> StackInfo:
        s = self.settings
        state = s.state_path
        state.mkdir(parents=True, exist_ok=True)
        try:
            if not s.database_url:
                t = time.monotonic()
                self.postgres = EmbeddedPostgres(state / "postgres")
                self.postgres.start()
                console.log(f"postgres ready in {time.monotonic() - t:.1f}s")
            if not s.redis_url:
                self.redis = EmbeddedRedis(state / "redis")
                self.redis.start()
                console.log("redis ready")
            if not s.temporal_address:
                t = time.monotonic()
                self.temporal = EmbeddedTemporal(
                    state / "temporal",
                    port=self.temporal_port or s.temporal_port,
                    ui_port=(self.temporal_ui_port or s.temporal_ui_port)
                    if self.temporal_ui
                    else None,
                    persist=self.temporal_persist,
                    search_attributes=self.search_attributes,
                )
                self.temporal.start()
                console.log(f"temporal ready in {time.monotonic() - t:.1f}s")
        except BaseException:
            self.stop()
            raise
        info = StackInfo(
            database_url=s.database_url or self.postgres.url,  # type: ignore[union-attr]
            redis_url=s.redis_url or self.redis.url,  # type: ignore[union-attr]
            temporal_address=s.temporal_address or self.temporal.address,  # type: ignore[union-attr]
            temporal_ui_url=s.temporal_ui_url or (self.temporal.ui_url if self.temporal else None),
            pids={
                name: pid
                for name, pid in (
                    ("postgres", self.postgres.pid if self.postgres else None),
                    ("redis", self.redis.pid if self.redis else None),
                    ("temporal", self.temporal.pid if self.temporal else None),
                )
                if pid
            },
        )
        info.write(state)
        return info

    def stop(self) -> None:
        for server in (self.temporal, self.redis, self.postgres):
            if server is not None:
                try:
                    server.stop()
                except Exception as exc:  # keep stopping the others
                    console.log(f"[red]could not stop {type(server).__name__}: {exc}")
        stack_file = self.settings.state_path / "stack.json"
        stack_file.unlink(missing_ok=True)


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", *args], env=env, start_new_session=True
    )


def prepare_database(settings: Settings, database_url: str) -> None:
    """Migrate to head and create the bootstrap admin when configured."""
    from evently.infra.migrate import upgrade

    upgrade(database_url)
    if settings.bootstrap_admin_email and settings.bootstrap_admin_password:
        created = asyncio.run(_bootstrap_admin(settings, database_url))
        console.log(
            f"admin {settings.bootstrap_admin_email} {'created' if created else 'already exists'}"
        )


async def _bootstrap_admin(settings: Settings, database_url: str) -> bool:
    from evently.accounts import ensure_user
    from evently.db.session import make_engine, make_sessionmaker

    engine = make_engine(database_url, settings, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            _, created = await ensure_user(
                session,
                settings.bootstrap_admin_email or "",
                settings.bootstrap_admin_password or "",
                role="admin",
            )
    finally:
        await engine.dispose()
    return created


def start_dev_mail(settings: Settings, info: StackInfo) -> tuple[StackInfo, DevMailServer | None]:
    """Unless EVENTLY_SMTP_URL is set: a local SMTP server keeping every message as
    STATE/mail/<Message-ID>.eml (on EVENTLY_DEV_SMTP_PORT, else a free port), recorded in
    stack.json so every worker of this state dir sends through it."""
    from evently.mail.devserver import DevMailServer

    if settings.smtp_url:
        return info, None
    port = settings.dev_smtp_port
    if port and port_open("127.0.0.1", port):
        port = 0
    server = DevMailServer(settings.state_path / "mail", port=port)
    server.start()
    info = dataclasses.replace(info, smtp_url=server.url)
    info.write(settings.state_path)
    return info, server


def run_dev(settings: Settings, search_attributes: dict[str, str]) -> int:
    started = time.monotonic()
    stack = EmbeddedStack(settings, search_attributes=search_attributes)
    children: list[subprocess.Popen[bytes]] = []
    mail: DevMailServer | None = None

    def _on_signal(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # both, explicitly: a shell that starts us in the background leaves SIGINT ignored
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        if port_open(settings.api_host, settings.api_port):
            console.print(f"[red]port {settings.api_port} is in use: is `evently dev` running?")
            return 1
        info = stack.start()
        prepare_database(settings, info.database_url)
        info, mail = start_dev_mail(settings, info)
        env = dict(os.environ)
        env["EVENTLY_STATE_DIR"] = str(settings.state_path)
        env.setdefault("EVENTLY_ENV", settings.env)
        if "webhook_allow_private_targets" not in settings.model_fields_set:
            # local development: webhook receivers on this machine (loopback) are allowed
            env["EVENTLY_WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "true"
        children.append(_spawn(["api"], env))
        children.append(
            _spawn(["worker", "--queues", "booking,search,payments,mail,webhooks"], env)
        )
        api = f"http://{settings.api_host}:{settings.api_port}"
        deadline = time.monotonic() + 60
        while not port_open(settings.api_host, settings.api_port):
            if any(c.poll() is not None for c in children) or time.monotonic() > deadline:
                console.print("[red]the API or the worker failed to start; see the log above")
                return 1
            time.sleep(0.1)
        console.print(
            f"\n[bold green]Evently is running[/] (ready in {time.monotonic() - started:.1f}s)\n"
            f"  Storefront     {api}/\n"  # buyer pages (issue 19, api/storefront/)
            f"  API            {api}\n"
            f"  API docs       {api}/docs\n"
            f"  Readiness      {api}/health/ready\n"
            f"  Temporal UI    {info.temporal_ui_url or '(external Temporal)'}\n"
            f"  Temporal gRPC  {info.temporal_address}\n"
            f"  Mail (SMTP)    {info.smtp_url or settings.smtp_url}"
            + (f" → {mail.directory}/*.eml\n" if mail else " (EVENTLY_SMTP_URL)\n")
            + f"  State dir      {settings.state_path}\n"
            "Press Ctrl-C to stop everything.\n"
        )
        while all(c.poll() is None for c in children):
            time.sleep(0.5)
        console.print("[red]a child process exited; stopping")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        console.print("stopping…")
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(settings.worker_graceful_shutdown_seconds + 5)
            except subprocess.TimeoutExpired:
                _stop_pid(child.pid, timeout=1)
        if mail is not None:
            mail.stop()
        stack.stop()
        console.print("stopped: no process left running")
