"""The engine's house: `botapp.tasks` imports the engine (botapp/engine/), never the other way round.

The engine queues its follow-up tasks by name (botapp.engine.dispatch): through the registered task
object when there is one (eager mode, the tests' patches, the routes all as before), else with
`send_task`, which CELERY_TASK_ROUTES routes by the same name, so the message lands on the same queue.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "botapp" / "engine"
MODULES = sorted(
    "botapp.engine" if path.name == "__init__.py" else f"botapp.engine.{path.stem}" for path in ENGINE.glob("*.py")
)


def tasks_imports(path: Path) -> list[str]:
    """Every place in the file that imports botapp.tasks, at module level or inside a function."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .. import tasks (inside botapp/engine/)
                base = ".".join(["botapp", *(["engine"] if node.level == 1 else []), *([base] if base else [])])
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Call) and any(
            isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith("botapp.tasks")
            for arg in node.args
        ):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in {"import_module", "import_string", "__import__"}:
                names = ["botapp.tasks"]
        found += [f"{path.name}:{node.lineno}" for name in names if name == "botapp.tasks"]
    return found


def test_no_engine_module_imports_the_tasks():
    assert len(MODULES) >= 10
    assert {path.name: tasks_imports(path) for path in ENGINE.glob("*.py") if tasks_imports(path)} == {}


def test_the_scan_finds_an_import_of_the_tasks(tmp_path):
    """The scan itself: every way of spelling it is caught."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import botapp.tasks\n"
        "def f():\n"
        "    from botapp import tasks\n"
        "    from botapp.tasks import deliver_generation\n"
        "    from .. import tasks\n"
        "    importlib.import_module('botapp.tasks')\n"
    )
    assert tasks_imports(sample) == [f"sample.py:{n}" for n in (1, 3, 4, 5, 6)]


def test_every_engine_module_imports_with_the_tasks_blocked():
    """In a fresh interpreter where `import botapp.tasks` fails, every engine module still imports."""
    code = (
        "import sys\n"
        "sys.modules['botapp.tasks'] = None\n"  # any import of it raises ImportError
        "import django\n"
        "django.setup()\n"
        "import importlib\n"
        f"for name in {MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "assert sys.modules['botapp.tasks'] is None\n"
        "print('ok')\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


# --- dispatch: by name, on the same queues ------------------------------------------------------------
@pytest.fixture
def published(monkeypatch):
    """What would be published (task name, queue name, eta); nothing reaches a broker or runs eagerly."""
    from celery import current_app

    sent: list[tuple[str, str, str | None]] = []

    def send_task_message(producer, name, message, **options):
        queue = options.get("queue")
        sent.append((name, getattr(queue, "name", queue), message.headers.get("eta")))

    eager = current_app.conf.task_always_eager
    current_app.conf.task_always_eager = False
    monkeypatch.setattr(current_app.amqp, "send_task_message", send_task_message)
    yield sent
    current_app.conf.task_always_eager = eager


def expected_queue(name: str) -> str:
    from celery import current_app

    route = (current_app.conf.task_routes or {}).get(name)
    return route["queue"] if route else current_app.conf.task_default_queue


def queue_all() -> None:
    from botapp.engine import dispatch

    dispatch.run_generation(1)
    dispatch.advance_generation(2, "2030-01-01T00:00:00+00:00")
    dispatch.deliver_generation(3, None)
    dispatch.deliver_generation(4, 2, countdown=5)
    dispatch.notify_failure(5, "SAFETY")


def test_dispatch_calls_the_registered_tasks(monkeypatch):
    """With botapp.tasks loaded (a worker, the tests), the task objects are called: their patches apply."""
    from botapp import tasks

    calls: list[tuple] = []
    for task in (tasks.run_generation, tasks.advance_generation, tasks.deliver_generation, tasks.notify_failure):
        monkeypatch.setattr(task, "delay", lambda *args, name=task.name: calls.append((name, "delay", args)))
        monkeypatch.setattr(
            task, "apply_async", lambda args, name=task.name, **kw: calls.append((name, "apply_async", args, kw))
        )
    queue_all()
    assert calls == [
        ("botapp.tasks.run_generation", "delay", (1,)),
        ("botapp.tasks.advance_generation", "delay", (2, "2030-01-01T00:00:00+00:00")),
        ("botapp.tasks.deliver_generation", "delay", (3, None)),
        ("botapp.tasks.deliver_generation", "apply_async", (4, 2), {"countdown": 5}),
        ("botapp.tasks.notify_failure", "delay", (5, "SAFETY")),
    ]


def test_dispatch_by_name_lands_on_the_same_queues(published, monkeypatch):
    """Registered (task.delay) or not (send_task by name): the same task names on the same queues."""
    from celery import current_app

    from botapp import tasks  # noqa: F401  (registers the tasks)
    from botapp.engine import dispatch

    names = [
        dispatch.RUN_GENERATION,
        dispatch.ADVANCE_GENERATION,
        dispatch.DELIVER_GENERATION,
        dispatch.DELIVER_GENERATION,
        dispatch.NOTIFY_FAILURE,
    ]
    queue_all()
    through_tasks = [(name, queue) for name, queue, _ in published]
    published.clear()
    for name in set(names):
        monkeypatch.delitem(current_app.tasks, name)  # a process that never loaded botapp.tasks
    queue_all()
    by_name = [(name, queue) for name, queue, _ in published]

    assert through_tasks == by_name == [(name, expected_queue(name)) for name in names]
    assert expected_queue(dispatch.DELIVER_GENERATION) == expected_queue(dispatch.NOTIFY_FAILURE)
    assert expected_queue(dispatch.DELIVER_GENERATION) != expected_queue(dispatch.RUN_GENERATION)
    assert [eta is not None for _, _, eta in published] == [False, False, False, True, False]  # the countdown
