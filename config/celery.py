"""The Celery app: `celery -A config worker` (threads pool by default) and `celery -A config beat`.

Configuration comes from Django settings (the CELERY_* names): the broker is Redis (REDIS_URL), RabbitMQ
(CELERY_BROKER_URL=amqp://...) or, with neither, a folder on disk (kombu's file-system transport), so
one machine needs no extra server. The beat schedule (`CELERY_BEAT_SCHEDULE`) runs the video poller
every GENERATION_POLL_TICK_SECONDS and the recovery sweep every GENERATION_SWEEP_SECONDS.
"""

import os

from celery import Celery
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    task_postrun,
    task_prerun,
    worker_process_shutdown,
    worker_shutdown,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _database_connections_as_for_a_request(sender=None, **_kwargs) -> None:
    """Django's rule for a request, for a task: keep the connection for CONN_MAX_AGE seconds (settings:
    60 on PostgreSQL, 0 on SQLite), closing it earlier when it is unusable (CONN_HEALTH_CHECKS).
    Celery's own closing after every task is off (CELERY_DB_REUSE_MAX in settings). An eager task
    (run inline by its caller, as in tests) is part of the caller's work: its connection is left alone,
    as Celery's fixup leaves it."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


@worker_shutdown.connect
@worker_process_shutdown.connect
def _close_generation_resources(**_kwargs) -> None:
    """Close the process's Telegram session and the poller's thread pools when the worker stops."""
    from botapp.engine.poller import close_pools
    from botapp.telegram.sender import close_sender

    close_sender()
    close_pools()


@after_setup_logger.connect
@after_setup_task_logger.connect
def _redact_celery_logs(**_kwargs) -> None:
    """Celery's own log handlers redact secrets too (see botapp.redaction)."""
    from botapp.redaction import install_log_redaction

    install_log_redaction()
