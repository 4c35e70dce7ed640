"""A fresh clone's `make run`: a taken port is refused before anything starts (with the way out), and
our own configuration adds no noise to the start-up output (kombu's "No hostname was supplied",
uvicorn's lifespan notice, Django's warning about WhiteNoise's synchronous files under ASGI)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management.base import CommandError

from botapp.management.commands.runstack import PORT_IN_USE_EXIT_CODE, check_port, port_in_use

ROOT = Path(__file__).resolve().parents[2]
CELERY = str(Path(sys.executable).with_name("celery"))
NOISE = (
    "No hostname was supplied",
    "ASGI 'lifespan' protocol appears unsupported",
    "StreamingHttpResponse must consume synchronous iterators",
)


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stack_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PORT", "REDIS_URL", "CELERY_BROKER_URL")}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONUNBUFFERED": "1", **extra})
    return env


# --- the port ---------------------------------------------------------------------------------------------
def test_port_check_says_how_to_choose_another(taken_port):
    assert port_in_use("127.0.0.1", taken_port)
    with pytest.raises(CommandError) as caught:
        check_port("127.0.0.1", taken_port)
    assert f"Port {taken_port} on 127.0.0.1 is already in use" in str(caught.value)
    assert "make run" in str(caught.value) and "PORT=" in str(caught.value)
    assert caught.value.returncode == PORT_IN_USE_EXIT_CODE


def test_a_free_port_passes():
    port = free_port()
    assert not port_in_use("127.0.0.1", port)
    check_port("127.0.0.1", port)


@pytest.mark.slow
def test_runstack_on_a_taken_port_starts_nothing_and_exits_with_the_reason(taken_port):
    """PORT (the environment variable) is honoured; nothing is printed as if it would work."""
    result = subprocess.run(
        [sys.executable, "manage.py", "runstack", "--no-bot", "--no-worker"],
        cwd=ROOT,
        env=stack_env(PORT=str(taken_port)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == PORT_IN_USE_EXIT_CODE, result.stdout + result.stderr
    assert f"Port {taken_port} on 127.0.0.1 is already in use" in result.stderr
    assert "PORT=" in result.stderr
    assert "Admin:" not in result.stdout and "started web" not in result.stdout


# --- start-up noise ---------------------------------------------------------------------------------------
def run_until(command: list[str], env: dict[str, str], log: Path, ready, timeout: float = 40.0) -> str:
    """Start `command`, wait until `ready(output)` (then call it once more with the process alive),
    stop it with SIGTERM, and return all of its output."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + timeout
        while not ready(log.read_text(errors="replace")):
            assert proc.poll() is None, f"exited with {proc.returncode}:\n{log.read_text(errors='replace')}"
            assert time.monotonic() < deadline, f"not ready in {timeout}s:\n{log.read_text(errors='replace')}"
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
    return log.read_text(errors="replace")


@pytest.mark.slow
def test_celery_worker_on_the_default_broker_starts_quietly(tmp_path):
    env = stack_env(
        CELERY_BROKER_FOLDER=str(tmp_path / "broker"),
        CELERY_TASK_DEFAULT_QUEUE=f"quiet-{uuid.uuid4().hex[:8]}",
    )
    command = [CELERY, "-A", "config", "worker", "--pool", "threads", "--concurrency", "2", "--loglevel", "INFO",
               "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", "quiet@%h"]  # fmt: skip
    output = run_until(command, env, tmp_path / "worker.log", lambda text: " ready." in text)
    assert "filesystem://" in output  # the default (folder) broker
    assert [noise for noise in NOISE if noise in output] == []


@pytest.mark.slow
def test_web_process_of_make_run_starts_and_serves_static_files_quietly(tmp_path):
    """The web process exactly as `make run` starts it (runstack), serving an admin static file."""
    port = free_port()
    fetched: dict[str, bytes] = {}

    def serve_static(text: str) -> bool:
        if "Uvicorn running" not in text:
            return False
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/admin/css/base.css", timeout=60) as response:
            fetched["css"] = response.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/", timeout=60) as response:
            fetched["health"] = response.read()
        time.sleep(0.5)  # a warning is printed after the response
        return True

    # DEBUG: WhiteNoise finds the files in the apps (no collectstatic in a test); it serves them alike.
    env = stack_env(PORT=str(port), DEBUG="true", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    command = [sys.executable, "manage.py", "runstack", "--no-bot", "--no-worker"]
    output = run_until(command, env, tmp_path / "web.log", serve_static)
    assert b"body" in fetched["css"] and len(fetched["css"]) > 1000
    assert f"http://127.0.0.1:{port}/admin/" in output
    assert [noise for noise in NOISE if noise in output] == [], output
