"""The follow-up tasks the engine queues, by name: the engine never imports `botapp.tasks`.

`botapp.tasks` is the Celery interface over the engine (it imports the engine), so the engine names
the tasks it queues instead of importing them. A task registered in this process (always in a worker:
Celery imports botapp.tasks at start) is called exactly as before, `.delay()` / `.apply_async()` on
the task object: eager mode (CELERY_TASK_ALWAYS_EAGER, the tests) and the routes are the task's own.
Elsewhere the message is sent by name (`send_task`); CELERY_TASK_ROUTES routes by the task's name,
so it lands on the same queue.
"""

from __future__ import annotations

from typing import Any

from celery import current_app

RUN_GENERATION = "botapp.tasks.run_generation"
ADVANCE_GENERATION = "botapp.tasks.advance_generation"
DELIVER_GENERATION = "botapp.tasks.deliver_generation"
NOTIFY_FAILURE = "botapp.tasks.notify_failure"


def delay(name: str, *args: Any) -> Any:
    task = current_app.tasks.get(name)
    if task is not None:
        return task.delay(*args)
    return current_app.send_task(name, args=args)


def apply_async(name: str, args: tuple, **options: Any) -> Any:
    task = current_app.tasks.get(name)
    if task is not None:
        return task.apply_async(args, **options)
    return current_app.send_task(name, args=args, **options)


def run_generation(request_id: int) -> None:
    delay(RUN_GENERATION, request_id)


def advance_generation(request_id: int, token: str | None) -> None:
    delay(ADVANCE_GENERATION, request_id, token)


def deliver_generation(request_id: int, new_level: int | None, *, countdown: float | None = None) -> None:
    if countdown is None:
        delay(DELIVER_GENERATION, request_id, new_level)
    else:
        apply_async(DELIVER_GENERATION, (request_id, new_level), countdown=countdown)


def notify_failure(request_id: int, reason: str | None) -> None:
    delay(NOTIFY_FAILURE, request_id, reason)
