"""Fixtures for the generation engine: the fake Google server and the Bot API emulator (each in its
own thread, reachable over HTTP from other processes) and a REAL Celery worker subprocess with
embedded beat, started by `celery -A config worker` exactly as in production.

The worker uses the test database (SQLite file test-db.sqlite3, or the PostgreSQL test database with
DATABASE_URL), the broker of the run (Redis with REDIS_URL, else the file-system broker in a temporary
folder) under a queue name of its own, and short timings (poll tick, first poll, retries) so that
every scenario ends in seconds. Tests wait with bounded polling loops, never fixed sleeps.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sandbox.google import FakeGoogleServer
from sandbox.telegram import BotAPIEmulator

ROOT = Path(__file__).resolve().parents[2]
CELERY = str(Path(sys.executable).with_name("celery"))
TOKEN = "7100000001:AAtest-generation-token"

# The worker's timings (environment of the subprocess; see config/settings.py for their meaning).
WORKER_ENV = {
    "GENERATION_POLL_TICK_SECONDS": "0.25",
    "GENERATION_SWEEP_SECONDS": "1",
    "GENERATION_REDISPATCH_AFTER_SECONDS": "3",
    "GENERATION_LEASE_SECONDS": "3",
    "VIDEO_FIRST_POLL_SECONDS": "0.2",
    "VIDEO_POLL_MIN_SECONDS": "0.2",
    "VIDEO_POLL_MAX_SECONDS": "0.4",
    "GENERATION_RETRY_BASE_SECONDS": "0.2",
    "GENERATION_RETRY_MAX_SECONDS": "0.5",
    "GENERATION_MAX_ATTEMPTS": "50",
    "GOOGLE_HTTP_TIMEOUT_SECONDS": "10",
    "TELEGRAM_REQUEST_TIMEOUT_SECONDS": "10",
    "TELEGRAM_MAX_WAIT_SECONDS": "3",
    "TELEGRAM_GLOBAL_RATE": "200",
    "TELEGRAM_GLOBAL_BURST": "50",
    "TELEGRAM_CHAT_RATE": "20",
    "TELEGRAM_CHAT_BURST": "10",
    "TELEGRAM_AUX_RATE": "200",
    "GENERATION_PROVIDER_MODE": "google",
    "GOOGLE_API_KEY": "test-gemini-key",
    "GOOGLE_VERTEX_API_KEY": "test-vertex-key",
    "GOOGLE_GENAI_USE_VERTEXAI": "false",
    "CELERY_WORKER_CONCURRENCY": "8",
    "LOG_LEVEL": "INFO",
    # Broadcasts (tests/generation/test_broadcast_e2e.py): a slow rate to pause and kill mid-way, a
    # short lease so a killed runner is replaced within seconds.
    "BROADCAST_RATE": "8",
    "BROADCAST_THREADS": "4",
    "BROADCAST_TICK_SECONDS": "0.5",
    "BROADCAST_LEASE_SECONDS": "2",
}


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05, what: str = "") -> Any:
    """Poll `predicate` until it returns something truthy (returned) or fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def fake_google() -> Iterator[FakeGoogleServer]:
    server = FakeGoogleServer().start_in_thread()
    try:
        yield server
    finally:
        server.stop_thread()


@pytest.fixture(scope="session")
def emulator() -> Iterator[BotAPIEmulator]:
    emu = BotAPIEmulator(TOKEN).start_in_thread()
    try:
        yield emu
    finally:
        emu.stop_in_thread()


class WorkerProcess:
    """`celery -A config worker -B` as a child process, restartable (and killable) by tests."""

    def __init__(self, env: dict[str, str], folder: Path, queue: str) -> None:
        self.env = env
        self.folder = folder
        self.queue = queue
        self.proc: subprocess.Popen | None = None
        self.log_path = folder / "worker.log"
        self.starts = 0

    def start(self, timeout: float = 30.0) -> WorkerProcess:
        self.starts += 1
        log = open(self.log_path, "a")  # noqa: SIM115 - closed when the process ends
        log.write(f"\n===== start #{self.starts} =====\n")
        log.flush()
        # The queues (work + ticks) come from CELERY_TASK_DEFAULT_QUEUE in the environment.
        command = [
            CELERY, "-A", "config", "worker", "-B",
            "--pool", "threads", "--concurrency", self.env.get("CELERY_WORKER_CONCURRENCY", "8"),
            "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
            "-n", f"gen-test-{self.starts}@%h", "-s", str(self.folder / f"beat-schedule-{self.starts}"),
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        marker = f"gen-test-{self.starts}@"
        wait_until(
            lambda: self._ready(marker),
            timeout=timeout,
            interval=0.1,
            what=f"the Celery worker to start (log: {self.log_path})",
        )
        return self

    def _ready(self, marker: str) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"the worker exited with {self.proc.returncode}:\n{self.log_tail()}")
        text = self.log_path.read_text(errors="replace")
        last = text.rsplit(f"===== start #{self.starts} =====", 1)[-1]
        return marker in last and " ready." in last

    def kill(self) -> None:
        """SIGKILL the whole process group: no warm shutdown, nothing acked or cleaned up."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.kill()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _database_url() -> str:
    from django.db import connection

    params = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{params['NAME']}"
    auth = params["USER"] + (f":{params['PASSWORD']}" if params.get("PASSWORD") else "")
    return f"postgres://{auth}@{params['HOST'] or '127.0.0.1'}:{params['PORT'] or 5432}/{params['NAME']}"


def point_producer_at(app, broker_url: str, transport_options: dict, queue: str) -> None:
    """Make this process publish where the worker consumes: its broker, folder and queue names.

    The app may already hold a connection pool and routing tables built from the process's own
    settings (an earlier test published something), so those caches are dropped too.
    """
    from kombu import Exchange, Queue

    app.conf.broker_url = broker_url
    app.conf.broker_transport_options = transport_options
    app.conf.task_default_queue = app.conf.task_default_exchange = app.conf.task_default_routing_key = queue
    app.conf.task_queues = tuple(
        Queue(name, Exchange(name, type="direct"), routing_key=name)
        for name in (queue, f"{queue}-ticks", f"{queue}-send")
    )
    app.conf.task_routes = {  # as config/settings.py derives them from CELERY_TASK_DEFAULT_QUEUE
        "botapp.tasks.poll_generations": {"queue": f"{queue}-ticks"},
        "botapp.tasks.sweep_generations": {"queue": f"{queue}-ticks"},
        "botapp.tasks.deliver_generation": {"queue": f"{queue}-send"},
        "botapp.tasks.notify_failure": {"queue": f"{queue}-send"},
    }
    app.conf.task_always_eager = False
    app._pool = None  # kombu keeps pools per (transport, host, options): a new folder gets a new pool
    app.__dict__.pop("amqp", None)  # cached: queues, router, producer pool


_WORKERS: list[WorkerProcess] = []  # the session's worker process, once started


@pytest.fixture(scope="session")
def celery_stack(
    django_db_setup, django_db_blocker, fake_google, emulator, tmp_path_factory
) -> Iterator[WorkerProcess]:
    """The worker subprocess, and this process's Celery producer pointed at the same broker/queue."""
    from django.conf import settings

    from config.celery import app

    folder = tmp_path_factory.mktemp("celery")
    queue = f"gen-test-{uuid.uuid4().hex[:8]}"
    media = folder / "media"
    media.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "GOOGLE_", "TELEGRAM_"))}
    with django_db_blocker.unblock():
        database_url = _database_url()
    env.update(WORKER_ENV)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": database_url,
            "DB_CONN_MAX_AGE": "0",
            "BOT_TOKEN": emulator.token,
            "TELEGRAM_API_URL": emulator.base_url,
            "GOOGLE_GEMINI_BASE_URL": fake_google.base_url,
            "GOOGLE_VERTEX_BASE_URL": fake_google.base_url,
            "CELERY_TASK_DEFAULT_QUEUE": queue,
            "MEDIA_ROOT": str(media),
            "GENERATION_DISPATCH": "botapp.tasks.dispatch_generation",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if settings.REDIS_URL:
        env["CELERY_BROKER_URL"] = settings.REDIS_URL
        options = dict(app.conf.broker_transport_options or {})
    else:
        broker = folder / "broker"
        env["CELERY_BROKER_URL"] = "filesystem://"
        env["CELERY_BROKER_FOLDER"] = str(broker)
        options = {
            "data_folder_in": str(broker / "queue"),
            "data_folder_out": str(broker / "queue"),
            "control_folder": str(broker / "control"),
            "polling_interval": 0.1,
        }
        for sub in ("queue", "control"):
            (broker / sub).mkdir(parents=True, exist_ok=True)
    point_producer_at(app, env["CELERY_BROKER_URL"], options, queue)
    worker = WorkerProcess(env, folder, queue)
    _WORKERS.append(worker)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
        if worker.proc is not None and worker.proc.returncode not in (0, -signal.SIGTERM, None):
            print(worker.log_tail(), file=sys.stderr)


@pytest.fixture
def stack(celery_stack, fake_google, emulator, settings) -> Iterator[WorkerProcess]:
    """Per test: dispatch to the real worker, clean fake/emulator scripts, a live worker."""
    settings.GENERATION_DISPATCH = "botapp.tasks.dispatch_generation"
    fake_google.reset()
    emulator.clear_faults()
    if not celery_stack.alive:
        celery_stack.start()
    yield celery_stack
    fake_google.reset()
    emulator.clear_faults()


@pytest.fixture
def tg_user(emulator, make_user) -> Callable[..., tuple[Any, Any]]:
    """tg_user(balance=..., language_code=...) -> (emulated Telegram user, TgUser with that id)."""

    def factory(*, balance: Decimal | int | str = 100, language_code: str = "en", **fields: Any):
        emu_user = emulator.user(first_name="Gen", language_code=language_code)
        user = make_user(balance=balance, telegram_id=emu_user.id, language_code=language_code, **fields)
        return emu_user, user

    return factory


# --- in-process engine runs (tasks eager) ---------------------------------------------------------------
@contextmanager
def inline_worker(
    settings: Any, emulator: BotAPIEmulator, google: FakeGoogleServer, media_root: Path
) -> Iterator[None]:
    """The workers' settings for an in-process run, pointed at this emulator and this fake Google;
    Celery tasks run eagerly (inline). Undone afterwards."""
    import botapp.tasks  # noqa: F401  (a worker has its tasks: the engine queues follow-ups by name)
    from botapp.engine import poller
    from botapp.telegram.sender import close_sender
    from config.celery import app

    close_sender()  # a sender of an earlier test may point at another emulator
    settings.BOT_TOKEN = emulator.token
    settings.TELEGRAM_API_URL = emulator.base_url
    settings.GOOGLE_GEMINI_BASE_URL = settings.GOOGLE_VERTEX_BASE_URL = google.base_url
    settings.GOOGLE_API_KEY = settings.GOOGLE_VERTEX_API_KEY = "test-key"
    settings.GENERATION_PROVIDER_MODE = "google"
    settings.MEDIA_ROOT = str(media_root)
    settings.TELEGRAM_GLOBAL_RATE = settings.TELEGRAM_CHAT_RATE = settings.TELEGRAM_AUX_RATE = 1000
    settings.VIDEO_FIRST_POLL_SECONDS = 0
    settings.DEMO_VIDEO_SECONDS = 0
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    google.reset()
    emulator.clear_faults()
    try:
        yield
    finally:
        app.conf.task_always_eager = eager
        emulator.clear_faults()
        close_sender()
        poller.close_pools()


@pytest.fixture
def engine(settings, emulator, fake_google, tmp_path):
    """An in-process run (`inline_worker`). The session's worker process (if an earlier test started
    it) is stopped: its poller and sweep share the database and would act on this test's requests.
    The `stack` fixture starts it again when a test needs it."""
    for process in _WORKERS:
        process.stop()
    with inline_worker(settings, emulator, fake_google, tmp_path):
        yield


def make_request(user, model, chat_id, **kw):
    from botapp.services.generation import GenerationService

    kw.setdefault("prompt", "a small house by the lake")
    return GenerationService.create_request(user_id=user.pk, ai_model_id=model.pk, chat_id=chat_id, **kw)


def run_to_end(request_id: int, rounds: int = 50) -> Any:
    """start(), then poll until finished (what the worker's tasks do, inline)."""
    from django.utils import timezone

    from botapp.engine import poller, steps
    from botapp.models import GenRequest

    steps.start(request_id)
    for _ in range(rounds):
        request = GenRequest.objects.get(pk=request_id)
        if request.status != "running":
            return request
        GenRequest.objects.filter(pk=request_id).update(next_poll_at=timezone.now())
        poller.poll_due()
    return GenRequest.objects.get(pk=request_id)
