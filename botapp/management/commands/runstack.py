"""`python manage.py runstack` (what `make run` starts): the whole project on one machine.

Child processes, each the same command a production Procfile runs:

- web:    uvicorn config.asgi:application on 127.0.0.1:$PORT (default 8000): the admin, the webhook,
          the health check. If the port is taken, nothing starts: the command says so and how to
          pick another one (`PORT=8001 make run`) and exits with code 2;
- sandbox: without BOT_TOKEN, `python -m sandbox.telegram` on SANDBOX_HOST:SANDBOX_PORT (127.0.0.1:8081):
          a local Telegram (the Bot API emulator) with a web chat page; every other process gets its
          token and URL, so the bot, the workers and the admin talk to it as they would to Telegram;
- bot:    `manage.py runbot` (long polling): Telegram's with BOT_TOKEN, else the sandbox's;
- worker: `celery -A config worker -B --pool threads`: the generation workers with the embedded beat
          (the video poller and the recovery sweep). Without REDIS_URL the broker is a folder on disk
          (kombu's file-system transport), so nothing else needs to be installed.

A database that is not migrated is migrated first. The terminal shows where everything is (the chat,
the admin and its login) and in which mode each part runs.

Ctrl+C (or SIGTERM) stops them all (warm shutdown: a generation in progress finishes or is resumed
from the database at the next start). If one of them exits on its own, the others are stopped too.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from botapp.redaction import error_text

STOP_TIMEOUT = 20.0
PORT_IN_USE_EXIT_CODE = 2
SANDBOX_BOT = "genstudio_sandbox_bot"
SANDBOX_BOT_NAME = "GenStudio"
SANDBOX_START_TIMEOUT = 30.0


def port_in_use(host: str, port: int) -> bool:
    """Whether a server could not listen on host:port now (as uvicorn binds: with SO_REUSEADDR, so
    a port in TIME_WAIT counts as free and a listening one as taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def check_port(host: str, port: int, *, variable: str = "PORT", what: str = "the web process") -> None:
    """Refuse to start on a port that is taken, naming the variable that picks another (code 2)."""
    try:
        if not port_in_use(host, port):
            return
    except OSError as exc:
        message = f"Cannot listen on {host}:{port}: {exc.strerror}. Choose another port: {variable}=8001 make run"
        raise CommandError(message) from exc
    free = next((p for p in range(port + 1, min(port + 50, 65536)) if not port_in_use(host, p)), port + 1)
    option = "--port" if variable == "PORT" else "--sandbox-port"
    raise CommandError(
        f"Port {port} on {host} is already in use (another `make run`, or another server), so {what} "
        f"cannot start there. Stop whatever uses it, or choose another port: {variable}={free} make run "
        f"(or {variable}={free} in .env, or `manage.py runstack {option} {free}`).",
        returncode=PORT_IN_USE_EXIT_CODE,
    )


@dataclass
class Child:
    name: str
    command: list[str]
    proc: subprocess.Popen | None = None
    ready_port: tuple[str, int] | None = None  # wait until this accepts connections before going on


def database_is_local() -> bool:
    """SQLite, or a database server on this machine (loopback, a Unix socket)."""
    database = settings.DATABASES["default"]
    if "sqlite" in database["ENGINE"]:
        return True
    host = str(database.get("HOST") or "")
    return host in ("", "localhost", "127.0.0.1", "::1") or host.startswith("/")


def refuse_a_shared_database() -> None:
    """The sandbox's "Pay" credits real ledger deposits in whatever database the stack uses: never in
    one on another machine (a production database), unless SANDBOX_ALLOW_REMOTE_DATABASE=true."""
    if database_is_local() or settings.SANDBOX_ALLOW_REMOTE_DATABASE:
        return
    raise CommandError(
        "The sandbox (no BOT_TOKEN) would run against the database on "
        f"{settings.DATABASES['default'].get('HOST')}: its test payments would credit real tokens there. "
        "Use a local database, set BOT_TOKEN, or SANDBOX_ALLOW_REMOTE_DATABASE=true if you mean it."
    )


@dataclass(frozen=True)
class Sandbox:
    """The local Telegram: where it listens and the bot token it accepts (new for every run)."""

    host: str
    port: int
    token: str
    username: str

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def chat_url(self) -> str:
        return f"{self.api_url}/chat/"

    @classmethod
    def create(cls) -> Sandbox:
        token = f"{7_000_000_000 + secrets.randbelow(999_999_999)}:sandbox-{secrets.token_urlsafe(24)}"
        return cls(settings.SANDBOX_HOST, settings.SANDBOX_PORT, token, settings.BOT_USERNAME or SANDBOX_BOT)


def wait_for_port(
    host: str, port: int, timeout: float, proc: subprocess.Popen, *, cancelled: Callable[[], bool] = lambda: False
) -> bool:
    """Wait until host:port accepts a connection (False if the process exits, Ctrl+C or time runs out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None or cancelled():
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def pending_migrations() -> bool:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    return bool(executor.migration_plan(executor.loader.graph.leaf_nodes()))


class Command(BaseCommand):
    help = "Run the web process, the bot (Telegram's, or the sandbox's) and a Celery worker with beat, until Ctrl+C."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=settings.PORT, help="the web port (default: $PORT or 8000)")
        parser.add_argument("--sandbox-port", type=int, default=settings.SANDBOX_PORT, help="the sandbox's port")
        parser.add_argument("--concurrency", type=int, default=settings.CELERY_WORKER_CONCURRENCY)
        parser.add_argument("--no-web", action="store_true", help="do not start the web process")
        parser.add_argument("--no-bot", action="store_true", help="do not start the bot (nor the sandbox)")
        parser.add_argument("--no-worker", action="store_true", help="do not start the Celery worker")

    def handle(self, *args, **options) -> None:
        python = sys.executable
        celery = os.path.join(os.path.dirname(python), "celery")
        sandbox = None
        if not settings.BOT_TOKEN and not options["no_bot"]:
            refuse_a_shared_database()
            sandbox = Sandbox.create()
            sandbox = Sandbox(sandbox.host, options["sandbox_port"], sandbox.token, sandbox.username)
        # Before printing a URL or starting anything: a taken port would kill the stack anyway.
        if not options["no_web"]:
            check_port(options["host"], options["port"])
        if sandbox is not None:
            check_port(sandbox.host, sandbox.port, variable="SANDBOX_PORT", what="the sandbox (the local Telegram)")
        if pending_migrations():
            self.stdout.write("The database is not migrated yet: migrating it first.")
            call_command("migrate", interactive=False, verbosity=1)
            from botapp.models import PromptStyle

            if not PromptStyle.objects.exists():  # a new database: start with the preset styles
                call_command("seed_styles", verbosity=0)
        children: list[Child] = []
        if sandbox is not None:
            children.append(
                Child(
                    "sandbox",
                    [python, "-m", "sandbox.telegram", "--host", sandbox.host, "--port", str(sandbox.port),
                     "--token", sandbox.token, "--username", sandbox.username, "--name", SANDBOX_BOT_NAME],
                    ready_port=(sandbox.host, sandbox.port),
                )
            )  # fmt: skip
        if not options["no_web"]:
            children.append(
                Child(
                    "web",
                    [python, "-m", "uvicorn", "config.asgi:application", "--host", options["host"],
                     "--port", str(options["port"]), "--no-access-log", "--lifespan", "off"],
                    ready_port=(options["host"], options["port"]),
                )
            )  # fmt: skip
        if not options["no_bot"]:
            children.append(Child("bot", [python, "manage.py", "runbot"]))
        if not options["no_worker"]:
            celery_command = [celery] if os.path.exists(celery) else [python, "-m", "celery"]
            schedule = settings.CELERY_BEAT_SCHEDULE_FILENAME
            children.append(
                Child(
                    "worker",
                    [*celery_command, "-A", "config", "worker", "-B", "-s", schedule, "--pool", "threads",
                     "--concurrency", str(options["concurrency"]), "--loglevel", "INFO"],
                )
            )  # fmt: skip
        if not children:
            self.stdout.write("Nothing to run.")
            return
        env = dict(os.environ)
        if sandbox is not None:  # every process talks to the sandbox as it would to Telegram
            env.update(BOT_TOKEN=sandbox.token, TELEGRAM_API_URL=sandbox.api_url, BOT_USERNAME=sandbox.username)
        self._run(children, env, lambda: self._describe(options, sandbox))

    def _describe(self, options, sandbox: Sandbox | None) -> None:
        """Where everything is, and in which mode each part runs."""
        rows: list[tuple[str, str]] = []
        if sandbox is not None:
            rows.append(("Chat", f"{sandbox.chat_url}   <- talk to the bot here, in your browser"))
        if not options["no_web"]:
            base = f"http://{options['host']}:{options['port']}"
            rows.append(("Admin", f"{base}/admin/   {self._admin_login(sandbox is not None)}"))
        if sandbox is not None:
            rows.append(("Telegram", "sandbox: a local Bot API emulator (set BOT_TOKEN in .env for the real Telegram)"))
        elif not options["no_bot"]:
            rows.append(("Telegram", f"the real Telegram, long polling: {self._bot_link()}"))
        rows.append(("Generation", self._generation_mode()))
        rows.append(("Database", self._database()))
        rows.append(("Task queue", self._broker()))
        rows.append(("FSM, cache", "Redis" if settings.REDIS_URL else "in memory (set REDIS_URL for Redis)"))
        width = max(len(name) for name, _ in rows) + 1
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS("GenStudio is running"))
        for name, value in rows:
            self.stdout.write(f"  {name + ':':<{width}} {value}")
        self.stdout.write("Press Ctrl+C to stop.")

    @staticmethod
    def _admin_login(local: bool) -> str:
        username, password = settings.ADMIN_USERNAME, settings.ADMIN_PASSWORD
        if not (username and password):
            return "(no login yet: `.venv/bin/python manage.py createsuperuser`)"
        return f"login: {username} / {password}" if local else f"login: {username} (password: ADMIN_PASSWORD)"

    @staticmethod
    def _bot_link() -> str:
        username = settings.BOT_USERNAME
        if not username:
            try:
                url = f"{settings.TELEGRAM_API_URL.rstrip('/')}/bot{settings.BOT_TOKEN}/getMe"
                with urllib.request.urlopen(url, timeout=5) as response:
                    username = json.load(response)["result"]["username"]
            except Exception as exc:
                return f"the bot (getMe failed: {error_text(exc)})"
        return f"https://t.me/{username}"

    @staticmethod
    def _generation_mode() -> str:
        credentials = settings.GOOGLE_API_KEY or settings.GOOGLE_VERTEX_API_KEY or settings.GOOGLE_CLOUD_PROJECT
        mode = settings.GENERATION_PROVIDER_MODE
        if mode == "demo" or (mode == "auto" and not credentials):
            return "demo provider: images and videos drawn offline (set GOOGLE_API_KEY for Google's models)"
        return "Google (google-genai: Gemini API / Vertex AI)"

    @staticmethod
    def _database() -> str:
        database = settings.DATABASES["default"]
        if "sqlite" in database["ENGINE"]:
            return f"SQLite ({database['NAME']})"
        return f"PostgreSQL ({database.get('HOST') or 'localhost'}:{database.get('PORT') or 5432}/{database['NAME']})"

    @staticmethod
    def _broker() -> str:
        broker = settings.CELERY_BROKER_URL
        if broker.startswith("filesystem://"):
            return f"a folder ({settings.CELERY_BROKER_FOLDER}); set REDIS_URL for Redis"
        parts = urlsplit(broker)
        return f"{parts.scheme} at {parts.hostname}:{parts.port or ''}".rstrip(":")

    def _run(self, children: list[Child], env: dict[str, str], on_ready: Callable[[], None]) -> None:
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        exit_code = 0
        try:
            for child in children:
                if stop.is_set():
                    break
                # Own process group: Ctrl+C in the terminal reaches only us; we stop the children in order.
                child.proc = subprocess.Popen(child.command, start_new_session=True, env=env)
                self.stdout.write(f"started {child.name} (pid {child.proc.pid})")
                ready = child.ready_port is None or wait_for_port(
                    *child.ready_port, SANDBOX_START_TIMEOUT, child.proc, cancelled=stop.is_set
                )
                if not ready and not stop.is_set():
                    self.stderr.write(f"{child.name} did not start; stopping")
                    exit_code = 1
                    stop.set()
            if not stop.is_set():
                on_ready()
            while not stop.is_set():
                for child in children:
                    code = child.proc.poll() if child.proc else None
                    if code is not None:
                        self.stderr.write(f"{child.name} exited with code {code}; stopping the others")
                        exit_code = code or 1
                        stop.set()
                        break
                stop.wait(0.3)
        finally:
            self._stop(children)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if exit_code:
            sys.exit(exit_code)

    def _stop(self, children: list[Child]) -> None:
        running = [c for c in children if c.proc is not None and c.proc.poll() is None]
        for child in running:
            self.stdout.write(f"stopping {child.name}...")
            try:
                os.killpg(child.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in running:
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{child.name} did not stop in {STOP_TIMEOUT:.0f}s; killing it")
                try:
                    os.killpg(child.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                child.proc.wait(5)
