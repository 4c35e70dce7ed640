"""The health check: /healthz (and /health/) answers 200 when the database, the cache and the Celery broker
answer, and 503 naming each failing part otherwise, in JSON, without a password in the answer."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test import override_settings

from config.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]
PARTS = ["database", "cache", "broker"]


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/health/"])
def test_healthy_answers_200_with_every_part(client, path):
    response = client.get(path)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok", "failing": [], "checks": dict.fromkeys(PARTS, "ok")}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_database_down_answers_503_naming_the_database(client):
    refused = OperationalError('connection to server at "127.0.0.1", port 1 failed: Connection refused')
    with mock.patch.object(BaseDatabaseWrapper, "ensure_connection", side_effect=refused):
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failing"] == ["database"]
    assert body["checks"]["database"].startswith("Unavailable")
    assert body["checks"]["cache"] == body["checks"]["broker"] == "ok"


@pytest.mark.django_db
def test_redis_cache_down_answers_503_naming_the_cache(client):
    port = closed_port()
    redis_cache = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": f"redis://127.0.0.1:{port}/0"}
    with override_settings(CACHES={"default": redis_cache}):
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["cache"]
    assert "Connection Error" in body["checks"]["cache"]


@pytest.mark.django_db
def test_broker_unreachable_answers_503_naming_the_broker(client):
    original = celery_app.conf.broker_url
    celery_app.conf.broker_url = f"redis://:broker-password-123@127.0.0.1:{closed_port()}/0"
    try:
        response = client.get("/healthz")
    finally:
        celery_app.conf.broker_url = original
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["broker"]
    assert body["checks"]["broker"] == "Unavailable: cannot connect to the broker (OperationalError)"
    assert "broker-password-123" not in response.content.decode()


@pytest.mark.slow
def test_everything_down_names_every_part_and_no_password(tmp_path):
    """A process configured for PostgreSQL and Redis on closed ports (nothing patched): 503, all three named."""
    db_port, redis_port = closed_port(), closed_port()
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(
        DATABASE_URL=f"postgres://probe:db-password-123@127.0.0.1:{db_port}/probe",
        REDIS_URL=f"redis://:redis-password-123@127.0.0.1:{redis_port}/0",
        SECRET_KEY="health-probe-secret-key-0123456789-abcdefghijklmnopqrstu",
        DEBUG="false",
        ALLOWED_HOSTS="testserver",  # the test client's host (a wildcard is refused with DEBUG off)
    )
    script = (
        "import django, json, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings'; django.setup(); "
        "from django.test import Client; r = Client().get('/healthz'); "
        "print(json.dumps({'status': r.status_code, 'body': r.content.decode()}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] == 503
    body = json.loads(answer["body"])
    assert body["status"] == "unavailable"
    assert body["failing"] == PARTS
    assert "password-123" not in answer["body"]
    assert "password-123" not in result.stderr  # the failures are logged, redacted
