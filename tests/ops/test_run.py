"""`make run` on a fresh machine: a bad configuration is named, a newcomer gets an admin login, the
database is migrated first, the sandbox (a local Telegram) runs the bot without a token, and Ctrl+C
stops the whole process tree."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import StrictEnv, read_env_file, write_env_value

from .test_startup import free_port, stack_env

ROOT = Path(__file__).resolve().parents[2]


# --- a corrupt .env line or value is named ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "named"),
    [
        ("DEBUG=true\nthis is not a setting\n", "line 2 is not NAME=value: 'this is not a setting'"),
        ('BOT_TOKEN="123:abc\nPORT=8000\n', "line 1: the value of BOT_TOKEN opens a quote it never closes"),
        ("# fine\n\nexport PORT=8000\n=nameless\n", "line 4 is not NAME=value: '=nameless'"),
    ],
)
def test_a_corrupt_env_line_is_named(tmp_path, content, named):
    env_file = tmp_path / ".env"
    env_file.write_text(content)
    with pytest.raises(ImproperlyConfigured) as caught:
        read_env_file(env_file)
    assert named in str(caught.value)


@pytest.mark.parametrize(
    ("name", "value", "cast"),
    [("RUN_TEST_FLAG", "maybe", bool), ("RUN_TEST_COUNT", "abc", int), ("RUN_TEST_RATE", "fast", float)],
)
def test_a_value_of_the_wrong_type_is_named_with_its_line(tmp_path, monkeypatch, name, value, cast):
    env_file = tmp_path / ".env"
    env_file.write_text(f"# comment\n{name}={value}\n")
    monkeypatch.delenv(name, raising=False)
    read_env_file(env_file)
    try:
        with pytest.raises(ImproperlyConfigured) as caught:
            StrictEnv()(name, cast=cast)
    finally:
        os.environ.pop(name, None)
    assert f"{name}={value!r} (from .env line 2)" in str(caught.value)


def test_good_values_still_read(monkeypatch):
    monkeypatch.setenv("RUN_TEST_FLAG", "off")
    monkeypatch.setenv("RUN_TEST_COUNT", "7")
    env = StrictEnv()
    assert env.bool("RUN_TEST_FLAG") is False and env.int("RUN_TEST_COUNT") == 7


def test_manage_py_prints_one_line_not_a_traceback():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=stack_env(DEBUG="maybe"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Configuration error: DEBUG='maybe' (from the environment) is not a yes/no value" in result.stderr
    assert "Traceback" not in result.stderr


def test_write_env_value_replaces_in_place_or_appends(tmp_path):
    env_file = tmp_path / ".env"
    write_env_value(env_file, "ADMIN_PASSWORD", "one", comment="made here")
    assert env_file.read_text() == "# made here\nADMIN_PASSWORD=one\n" and env_file.stat().st_mode & 0o077 == 0
    env_file.write_text("A=1\nADMIN_PASSWORD=\nB=2\n")
    write_env_value(env_file, "ADMIN_PASSWORD", "two")
    assert env_file.read_text() == "A=1\nADMIN_PASSWORD=two\nB=2\n"


# --- the newcomer's admin login -----------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_newcomer_gets_an_admin_login_saved_in_env(tmp_path, settings):
    from django.contrib.auth import authenticate as login_check
    from django.core.management import call_command
    from django.test import RequestFactory

    def authenticate(**credentials):  # the login throttle (django-axes) needs the request
        return login_check(RequestFactory().post("/admin/login/"), **credentials)

    settings.ADMIN_USERNAME, settings.ADMIN_PASSWORD = "", ""
    env_file = tmp_path / ".env"
    call_command("ensure_admin", env_file=str(env_file))
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    assert values["ADMIN_USERNAME"] == "admin" and len(values["ADMIN_PASSWORD"]) >= 12
    assert authenticate(username="admin", password=values["ADMIN_PASSWORD"]) is not None
    call_command("ensure_admin", env_file=str(env_file))  # an admin exists now: nothing is replaced
    assert env_file.read_text().count("ADMIN_PASSWORD=") == 1
    assert authenticate(username="admin", password=values["ADMIN_PASSWORD"]) is not None


# --- the sandbox, and Ctrl+C -------------------------------------------------------------------------------
def _pids(output: str) -> dict[str, int]:
    return {name: int(pid) for name, pid in re.findall(r"started (\w+) \(pid (\d+)\)", output)}


def _group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


def sandbox_env(folder: Path, *, web: int, sandbox: int, **extra: str) -> dict[str, str]:
    """What a newcomer's `make run` sees: no token, no Google, no Redis; its own ports and files."""
    return stack_env(
        PORT=str(web),
        SANDBOX_PORT=str(sandbox),
        BOT_TOKEN="",
        BOT_USERNAME="",
        DEBUG="false",
        SECRET_KEY="a-real-secret-key-for-this-test-only-0123456789-abcdefghij",
        ADMIN_USERNAME="admin",
        DATABASE_URL=f"sqlite:///{folder / 'fresh.sqlite3'}",  # never migrated
        MEDIA_ROOT=str(folder / "media"),
        CELERY_BROKER_FOLDER=str(folder / "broker"),
        CELERY_BEAT_SCHEDULE_FILENAME=str(folder / "beat"),
        GENERATION_PROVIDER_MODE="auto",
        GOOGLE_API_KEY="",
        GOOGLE_VERTEX_API_KEY="",
        GOOGLE_CLOUD_PROJECT="",
        **extra,
    )


def run_stack(env: dict[str, str], log: Path, command: list[str]) -> subprocess.Popen:
    """Start `command` in its own process group, like a shell's foreground job (Ctrl+C reaches the group)."""
    with log.open("w") as out:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_running(proc: subprocess.Popen, log: Path, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while "Press Ctrl+C to stop." not in log.read_text(errors="replace"):
        assert proc.poll() is None, log.read_text(errors="replace")
        assert time.monotonic() < deadline, log.read_text(errors="replace")
        time.sleep(0.3)
    return log.read_text(errors="replace")


def ctrl_c_stops_everything(proc: subprocess.Popen, log: Path) -> None:
    """SIGINT to the group (what Ctrl+C in the terminal does): every child's process group must be gone."""
    pids = _pids(log.read_text(errors="replace"))
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(60)
        deadline = time.monotonic() + 30
        while any(_group_alive(pid) for pid in pids.values()) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = [name for name, pid in pids.items() if _group_alive(pid)]
        assert left == [], f"still running after Ctrl+C: {left}\n{log.read_text(errors='replace')}"
    finally:
        for pid in [proc.pid, *pids.values()]:
            if _group_alive(pid):
                os.killpg(pid, signal.SIGKILL)


@pytest.mark.slow
def test_without_a_token_the_stack_migrates_runs_the_sandbox_and_stops_on_ctrl_c(tmp_path):
    """`manage.py runstack` (the last step of `make run`; the browser test in tests/e2e runs `make run`
    itself and stops it the same way) on a database that was never migrated."""
    web, sandbox = free_port(), free_port()
    log = tmp_path / "run.log"
    env = sandbox_env(tmp_path, web=web, sandbox=sandbox, ADMIN_PASSWORD="run-test-password")
    proc = run_stack(env, log, [sys.executable, "manage.py", "runstack"])
    try:
        output = wait_running(proc, log)
        assert "The database is not migrated yet: migrating it first." in output
        assert set(_pids(output)) == {"sandbox", "web", "bot", "worker"}, output
        assert f"Chat:       http://127.0.0.1:{sandbox}/chat/" in output
        assert f"Admin:      http://127.0.0.1:{web}/admin/   login: admin / run-test-password" in output
        assert "Telegram:   sandbox" in output and "Generation: demo provider" in output
        assert "Database:   SQLite" in output and "Task queue: a folder" in output
        with urllib.request.urlopen(f"http://127.0.0.1:{web}/admin/login/", timeout=60) as response:
            assert response.status == 200  # the admin's tables exist
        token = re.search(r"Token: (\S+)", output).group(1)
        # The bot polls the sandbox with the sandbox's token, as it would poll Telegram.
        deadline = time.monotonic() + 30
        while True:
            url = f"http://127.0.0.1:{sandbox}/bot{token}/getMyCommands"
            with urllib.request.urlopen(url, timeout=5) as response:
                if json.load(response)["result"]:  # the bot registered its command menu at start-up
                    break
            assert time.monotonic() < deadline, "the bot never reached the sandbox"
            time.sleep(0.5)
    finally:
        ctrl_c_stops_everything(proc, log)


# --- the sandbox never against a shared database (issue "Hardening II", item 8) -----------------------------------
def test_the_sandbox_refuses_a_database_on_another_machine(settings):
    from django.core.management import CommandError

    from botapp.management.commands.runstack import database_is_local, refuse_a_shared_database

    default = settings.DATABASES["default"]
    assert database_is_local()  # the tests' own: SQLite, or PostgreSQL on loopback
    settings.DATABASES = {"default": {**default, "ENGINE": "django.db.backends.postgresql", "HOST": "db.prod.internal"}}
    with pytest.raises(CommandError, match=r"db\.prod\.internal: its test payments would credit real tokens"):
        refuse_a_shared_database()
    settings.SANDBOX_ALLOW_REMOTE_DATABASE = True  # asked for explicitly
    refuse_a_shared_database()
    settings.DATABASES = {"default": {**default, "ENGINE": "django.db.backends.postgresql", "HOST": "/run/postgresql"}}
    settings.SANDBOX_ALLOW_REMOTE_DATABASE = False
    assert database_is_local()
