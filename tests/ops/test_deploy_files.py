"""The deployment files agree: the Procfile, docker-compose.yml, the Railway configs (railway/*.json) and
the Dockerfile name the same processes (web, worker, beat, bot) with the same commands, migrations run
before them in each, every command they name exists and accepts its options, the Dockerfile's Python
is .python-version's, and the two locks match pyproject.toml.

(Docker itself is not run here: these files are checked statically.)"""

from __future__ import annotations

import http.server
import importlib
import importlib.util
import json
import re
import shlex
import threading
import tomllib
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from celery import Celery
from celery.app.utils import find_app
from django.core.management import get_commands, load_command_class
from django.urls import resolve
from packaging.specifiers import SpecifierSet

from config import healthcheck
from config.secret_key import is_public

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = {"web", "worker", "beat", "bot"}
MIGRATE = "python manage.py migrate --noinput"
SERVICES = {"postgres", "redis", "migrate"}  # compose services besides the processes


# --- reading the files ------------------------------------------------------------------------------------
def procfile() -> dict[str, str]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = command.split(" #")[0].strip()
    return entries


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def railway() -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text()) for path in sorted((ROOT / "railway").glob("*.json"))}


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def dockerfile_instruction(name: str) -> str:
    """The (last) instruction `name` of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", dockerfile())
    found = [line.split(None, 1)[1] for line in text.splitlines() if line.split(None, 1)[:1] == [name]]
    assert found, f"no {name} in the Dockerfile"
    return found[-1]


def shell_command(command: str | list[str]) -> str:
    """A command as the shell line it runs: exec-form lists joined, `sh -c "exec ..."` unwrapped."""
    words = shlex.split(command) if isinstance(command, str) else list(command)
    if len(words) == 3 and words[0] in ("sh", "/bin/sh") and words[1] == "-c":
        return shell_command(words[2])
    if words and words[0] == "exec":
        words = words[1:]
    return " ".join(words)


def steps(command: str | list[str]) -> list[str]:
    return [" ".join(step.split()) for step in shell_command(command).split("&&")]


def compose_command(service: str) -> str:
    """The service's command; without one, the image's CMD."""
    spec = compose()["services"][service]
    if "command" in spec:
        return shell_command(spec["command"])
    return shell_command(json.loads(dockerfile_instruction("CMD")))


# --- the same processes, the same commands -----------------------------------------------------------------
def test_every_platform_names_the_same_processes():
    assert set(procfile()) == PROCESSES
    assert set(compose()["services"]) == PROCESSES | SERVICES
    assert set(railway()) == PROCESSES


@pytest.mark.parametrize("process", sorted(PROCESSES))
def test_each_process_runs_the_same_command_everywhere(process):
    expected = steps(procfile()[process])[-1]  # the Procfile's web migrates and collects static files first
    assert compose_command(process) == expected
    assert shell_command(railway()[process]["deploy"]["startCommand"]) == expected


def test_the_image_runs_the_web_process_by_default():
    assert shell_command(json.loads(dockerfile_instruction("CMD"))) == steps(procfile()["web"])[-1]
    assert "--lifespan off" in steps(procfile()["web"])[-1] and "--port ${PORT:-8000}" in steps(procfile()["web"])[-1]


def test_migrations_run_once_before_the_processes():
    assert steps(procfile()["web"])[0] == MIGRATE
    services = compose()["services"]
    assert shell_command(services["migrate"]["command"]) == MIGRATE
    for process in PROCESSES:
        assert services[process]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    configs = railway()
    assert configs["web"]["deploy"]["preDeployCommand"] == [MIGRATE]
    assert [name for name, config in configs.items() if "preDeployCommand" in config["deploy"]] == ["web"]


def test_one_beat_and_one_polling_bot_on_railway():
    configs = railway()
    assert configs["beat"]["deploy"]["numReplicas"] == 1  # two beats would schedule every tick twice
    assert configs["bot"]["deploy"]["numReplicas"] == 1  # two pollers of one token conflict (409)
    for config in configs.values():
        assert config["build"] == {"builder": "DOCKERFILE", "dockerfilePath": "Dockerfile"}
    assert resolve(configs["web"]["deploy"]["healthcheckPath"]).url_name == "healthz"


def test_compose_services_wait_for_healthy_postgres_and_redis():
    services = compose()["services"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert services["web"]["healthcheck"]["test"] == ["CMD", "python", "-m", "config.healthcheck"]
    for name in PROCESSES | {"migrate"}:
        assert services[name]["depends_on"]["postgres"] == {"condition": "service_healthy"}
        assert services[name]["depends_on"]["redis"] == {"condition": "service_healthy"}
        environment = services[name]["environment"]
        assert re.fullmatch(r"postgres://\w+:\w+@postgres:5432/\w+", environment["DATABASE_URL"])
        assert environment["REDIS_URL"] == "redis://redis:6379/0"
        assert services[name]["env_file"] == ".env"
    for name in ("worker", "beat", "bot"):
        assert services[name]["healthcheck"] == {"disable": True}  # the image's check is the web's
    assert services["bot"]["profiles"] == ["polling"]
    assert all("profiles" not in services[name] for name in PROCESSES - {"bot"})
    for name in ("web", "worker", "bot"):  # they store and send results: one media folder for all
        assert "media:/app/media" in services[name]["volumes"]
    assert services["web"]["environment"]["MEDIA_ROOT"] == "/app/media"


# --- every command exists -------------------------------------------------------------------------------
def all_commands() -> set[str]:
    commands = {step for command in procfile().values() for step in steps(command)}
    commands |= {compose_command(name) for name in PROCESSES | {"migrate"}}
    for config in railway().values():
        commands.add(shell_command(config["deploy"]["startCommand"]))
        commands.update(shell_command(command) for command in config["deploy"].get("preDeployCommand", []))
    commands.add(shell_command(json.loads(dockerfile_instruction("HEALTHCHECK").split("CMD", 1)[1])))
    return commands


def check_command(command: str) -> None:
    words = command.replace("${PORT:-8000}", "8000").split()
    if words[:2] == ["python", "manage.py"]:
        name, args = words[2], words[3:]
        assert name in get_commands(), f"no management command {name!r}"
        load_command_class(get_commands()[name], name).create_parser("manage.py", name).parse_args(args)
    elif words[:2] == ["python", "-m"]:
        assert importlib.util.find_spec(words[2]) is not None, f"no module {words[2]}"
    elif words[0] == "celery":
        from celery.bin.celery import celery

        assert words[1] in ("-A", "--app"), "celery -A <app> <command> ..."
        context = celery.make_context("celery", words[1:3])
        app = find_app(context.params["app"])  # how `celery -A` finds it
        assert isinstance(app, Celery)
        name, *args = words[3:]
        context.obj = types.SimpleNamespace(app=app)
        celery.commands[name].make_context(name, args, parent=context)  # unknown options or values raise
    elif words[0] == "uvicorn":
        context = importlib.import_module("uvicorn.main").main.make_context("uvicorn", words[1:])
        module, attribute = context.params["app"].split(":")
        assert callable(getattr(importlib.import_module(module), attribute))
    else:
        raise AssertionError(f"a command this test does not know: {command}")


def test_every_command_the_files_name_exists_and_accepts_its_options():
    commands = all_commands()
    assert len(commands) >= 6, commands
    for command in sorted(commands):
        check_command(command)


def test_a_wrong_command_is_caught():
    wrong_commands = [
        "python manage.py migrat --noinput",
        "python manage.py migrate --no-input-at-all",
        "celery -A config workr",
        "celery -A config worker --pool thread",
        "uvicorn config.asgi:application --lifespan of",
        "uvicorn config.asgi:app",
        "python -m config.healthchek",
    ]
    for wrong in wrong_commands:
        with pytest.raises(Exception):  # noqa: B017 - an assertion or the parser's refusal
            check_command(wrong)


# --- the Dockerfile -------------------------------------------------------------------------------------
def test_dockerfile_python_is_python_version():
    version = (ROOT / ".python-version").read_text().strip()
    assert re.search(r"^ARG PYTHON_VERSION=(\S+)$", dockerfile(), re.M).group(1) == version
    bases = re.findall(r"^FROM (\S+)", dockerfile(), re.M)
    assert len(bases) == 2 and all(base.startswith("python:${PYTHON_VERSION}-") for base in bases)
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert version + ".0" in SpecifierSet(requires)
    assert "$(shell cat .python-version)" in (ROOT / "Makefile").read_text()


def test_dockerfile_builds_the_production_lock_and_runs_unprivileged():
    text = dockerfile()
    assert "COPY requirements/prod.txt" in text and "--require-hashes" in text
    assert "requirements/dev.txt" not in text
    assert dockerfile_instruction("USER") == "app"
    for source in re.findall(r"^COPY (?!--from)(\S+)", text, re.M):
        assert (ROOT / source).exists(), source
    # collectstatic at build time with a random key made for the step, left neither in the image's
    # environment nor in a build argument; the key the image once used is refused as public
    assert "SECRET_KEY=\"$(python -c 'import secrets; print(secrets.token_urlsafe(50))')\"" in text
    assert "collectstatic --noinput" in text and "ARG COLLECTSTATIC_SECRET_KEY" not in text
    assert "SECRET_KEY" not in dockerfile_instruction("ENV")
    assert is_public("collectstatic-only-not-a-runtime-key-5d1f0c9e7b")
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".git", ".venv", "db.sqlite3*", "media"} <= set(ignored)


# --- the locks -------------------------------------------------------------------------------------------
def pins(path: Path) -> dict[str, str]:
    text = path.read_text()
    found = dict(re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(\S+)", text, re.M))
    requirements = [block for block in re.split(r"\n(?=\S)", text) if "==" in block.split("\n")[0]]
    assert all("--hash=sha256:" in block for block in requirements), f"a requirement without a hash in {path}"
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in found.items()}


def test_locks_pin_pyproject_and_dev_extends_prod():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    prod, dev = pins(ROOT / "requirements/prod.txt"), pins(ROOT / "requirements/dev.txt")

    def declared(requirements: list[str]) -> dict[str, str]:
        parsed = (re.match(r"^([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==(\S+)$", item).groups() for item in requirements)
        return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in parsed}

    assert declared(project["dependencies"]).items() <= prod.items()
    assert declared(project["dependencies"] + project["optional-dependencies"]["dev"]).items() <= dev.items()
    assert prod.items() <= dev.items()  # the same versions in production as in the tests
    assert not (set(prod) & {"pytest", "ruff", "pip-tools", "pyyaml"})
    assert not (ROOT / "requirements.lock").exists()


# --- the container's health check -----------------------------------------------------------------------
def test_health_check_host_is_an_allowed_host():
    assert healthcheck.host_header("") == "localhost"
    assert healthcheck.host_header("*") == "localhost"
    assert healthcheck.host_header(" bot.example.com, *") == "bot.example.com"
    assert healthcheck.host_header("*, .example.org") == "example.org"


@pytest.fixture
def health_server() -> Iterator[tuple[int, list[str], list[int]]]:
    hosts: list[str] = []
    status = [200]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hosts.append(self.headers["Host"])
            self.send_response(status[0] if self.path == "/healthz" else 404)
            self.end_headers()
            self.wfile.write(b'{"status": "..."}')

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], hosts, status
    finally:
        server.shutdown()
        server.server_close()


def test_health_check_passes_on_200_and_fails_otherwise(health_server):
    port, hosts, status = health_server
    assert healthcheck.check(str(port), "bot.example.com")[0] is True
    assert hosts == ["bot.example.com"]
    status[0] = 503
    healthy, answer = healthcheck.check(str(port), "")
    assert healthy is False and answer.startswith("503")
    assert healthcheck.check("1", "")[0] is False  # nothing listens: unhealthy, no exception
