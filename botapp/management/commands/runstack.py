"""`python manage.py runstack` (what `make run` starts): the whole project on one machine.

Child processes, each the same command a production Procfile runs:

- web:    uvicorn config.asgi:application on 127.0.0.1:$PORT (default 8000): the admin, the webhook,
          the health check. If the port is taken, nothing starts: the command says so and how to
          pick another one (`PORT=8001 make run`) and exits with code 2;
- bot:    `manage.py runbot` (long polling), when BOT_TOKEN is set;
- worker: `celery -A config worker -B --pool threads`: the generation workers with the embedded beat
          (the video poller and the recovery sweep). Without REDIS_URL the broker is a folder on disk
          (kombu's file-system transport), so nothing else needs to be installed.

Ctrl+C (or SIGTERM) stops them all (warm shutdown: a generation in progress finishes or is resumed
from the database at the next start). If one of them exits on its own, the others are stopped too.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

STOP_TIMEOUT = 20.0
PORT_IN_USE_EXIT_CODE = 2


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


def check_port(host: str, port: int) -> None:
    """Refuse to start on a port that is taken, saying how to choose another (CommandError, code 2)."""
    try:
        if not port_in_use(host, port):
            return
    except OSError as exc:
        message = f"Cannot listen on {host}:{port}: {exc.strerror}. Choose another port: PORT=8001 make run"
        raise CommandError(message) from exc
    free = next((p for p in range(port + 1, min(port + 50, 65536)) if not port_in_use(host, p)), port + 1)
    raise CommandError(
        f"Port {port} on {host} is already in use (another `make run`, or another server), so the web "
        f"process cannot start there. Stop whatever uses it, or choose another port: PORT={free} make run "
        f"(or PORT={free} in .env, or `manage.py runstack --port {free}`).",
        returncode=PORT_IN_USE_EXIT_CODE,
    )


@dataclass
class Child:
    name: str
    command: list[str]
    proc: subprocess.Popen | None = None


class Command(BaseCommand):
    help = "Run the web process, the bot (with BOT_TOKEN) and a Celery worker with beat, until Ctrl+C."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=settings.PORT, help="the web port (default: $PORT or 8000)")
        parser.add_argument("--concurrency", type=int, default=settings.CELERY_WORKER_CONCURRENCY)
        parser.add_argument("--no-web", action="store_true", help="do not start the web process")
        parser.add_argument("--no-bot", action="store_true", help="do not start the bot")
        parser.add_argument("--no-worker", action="store_true", help="do not start the Celery worker")

    def handle(self, *args, **options) -> None:
        python = sys.executable
        celery = os.path.join(os.path.dirname(python), "celery")
        children: list[Child] = []
        if not options["no_web"]:
            # Before printing the URL or starting anything: a taken port would kill the stack anyway.
            check_port(options["host"], options["port"])
            children.append(
                Child(
                    "web",
                    [python, "-m", "uvicorn", "config.asgi:application", "--host", options["host"],
                     "--port", str(options["port"]), "--no-access-log", "--lifespan", "off"],
                )
            )  # fmt: skip
        if not options["no_bot"]:
            if settings.BOT_TOKEN:
                children.append(Child("bot", [python, "manage.py", "runbot"]))
            else:
                self.stdout.write("BOT_TOKEN is not set: the bot is not started (see .env.example).")
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
        self._describe(options)
        self._run(children)

    def _describe(self, options) -> None:
        broker = settings.CELERY_BROKER_URL
        where = (
            f"a folder ({settings.CELERY_BROKER_FOLDER})"
            if broker.startswith("filesystem://")
            else broker.split("@")[-1]
        )
        if not options["no_web"]:
            base = f"http://{options['host']}:{options['port']}"
            self.stdout.write(self.style.SUCCESS(f"Admin: {base}/admin/   health check: {base}/health/"))
        self.stdout.write(f"Task queue: {where}. Generation: {settings.GENERATION_PROVIDER_MODE} mode.")
        self.stdout.write("Press Ctrl+C to stop.")

    def _run(self, children: list[Child]) -> None:
        stopping = False

        def request_stop(signum, _frame) -> None:
            nonlocal stopping
            stopping = True

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for child in children:
                # Own process group: Ctrl+C in the terminal reaches only us; we stop the children in order.
                child.proc = subprocess.Popen(child.command, start_new_session=True)
                self.stdout.write(f"started {child.name} (pid {child.proc.pid})")
            exit_code = 0
            while not stopping:
                for child in children:
                    code = child.proc.poll() if child.proc else None
                    if code is not None:
                        self.stderr.write(f"{child.name} exited with code {code}; stopping the others")
                        exit_code = code or 1
                        stopping = True
                        break
                time.sleep(0.3)
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
