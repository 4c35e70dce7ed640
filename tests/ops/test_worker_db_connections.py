"""A worker keeps its database connection across tasks by Django's rule (CONN_MAX_AGE, health
checks), not Celery's fixup, which closed it around every task (a new PostgreSQL backend each time)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


def _open() -> None:
    connection.ensure_connection()
    assert connection.connection is not None


def test_celerys_django_fixup_no_longer_closes_the_connection_around_a_task():
    from celery.fixups.django import DjangoWorkerFixup

    from config.celery import app

    fixup = DjangoWorkerFixup(app)
    _open()
    for _ in range(10):
        fixup.close_database()  # what it runs before and after every task
    assert connection.connection is not None


def test_each_task_applies_djangos_rule_and_an_eager_task_leaves_its_callers_connection(settings):
    from config.celery import _database_connections_as_for_a_request as around_a_task

    _open()
    around_a_task(sender=SimpleNamespace(request=SimpleNamespace(is_eager=True)))
    assert connection.connection is not None  # an eager task is the caller's work
    connection.close_at = 0  # past CONN_MAX_AGE (0 on SQLite: closed after each task there)
    around_a_task(sender=SimpleNamespace(request=SimpleNamespace(is_eager=False)))
    assert connection.connection is None
