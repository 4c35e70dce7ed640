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


def test_a_busy_finisher_thread_applies_djangos_rule_once_a_second_and_at_once_after_an_error(monkeypatch):
    """Each close_old_connections costs the next query a health check (SELECT 1): a finisher thread
    storing dozens of videos a second runs it at most once a second, but at once after a DB error."""
    from botapp.engine import poller

    calls, clock = [], [1000.0]
    monkeypatch.setattr(poller, "close_old_connections", lambda: calls.append(clock[0]))
    monkeypatch.setattr(poller.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(poller, "_tidied", poller.local())
    _open()
    for _ in range(5):
        poller._tidy_connections()
    assert calls == [1000.0]
    clock[0] += 0.5
    connection.errors_occurred = True
    try:
        poller._tidy_connections()
    finally:
        connection.errors_occurred = False
    assert calls == [1000.0, 1000.5]
    clock[0] += 0.9
    poller._tidy_connections()
    assert len(calls) == 2
    clock[0] += 0.2  # a second after the last
    poller._tidy_connections()
    assert calls[-1] == 1001.6
