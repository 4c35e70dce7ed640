"""The health check (`/healthz`, and `/health/`): the database, the cache and the Celery broker.

Built on django-health-check: its `Database` check (``SELECT 1`` on a temporary connection) and its
`Cache` check (set and get a key: Redis when REDIS_URL is set, memory otherwise), and `Broker` below,
which opens a connection to the Celery broker (kombu) without needing a running worker (the library's
Celery check pings workers, which the web process must not depend on).

The answer is always JSON: 200 ``{"status": "ok", ...}`` when every part answers, otherwise 503 with
the failing parts named in ``failing`` and each part's error in ``checks``. Error texts name the kind
of failure only (never a URL or a password); the full error goes to the log, through the redaction
filter.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime

from django.http import HttpRequest, JsonResponse
from django.utils.module_loading import import_string
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView

# The parts checked, by the name they have in the answer.
PARTS: dict[str, str] = {
    "database": "health_check.checks.Database",
    "cache": "health_check.checks.Cache",
    "broker": "botapp.health.Broker",
}


@dataclasses.dataclass
class Broker(HealthCheck):
    """The Celery broker accepts a connection (Redis, RabbitMQ or the folder broker), within `timeout`."""

    timeout: datetime.timedelta = dataclasses.field(default=datetime.timedelta(seconds=3), repr=False)

    def run(self) -> None:
        from config.celery import app

        seconds = self.timeout.total_seconds()
        try:
            with app.connection_for_write() as connection:
                # One attempt, no retry loop: a health check answers now.
                connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=seconds)
        except Exception as exc:
            raise ServiceUnavailable(f"cannot connect to the broker ({type(exc).__name__})") from exc


class HealthView(HealthCheckView):
    """Runs every part of PARTS concurrently; 200 when all pass, 503 naming the failing ones."""

    http_method_names = ["get", "head"]

    async def get(self, request: HttpRequest, *args, **kwargs) -> JsonResponse:
        names = list(PARTS)
        with self.get_executor() as executor:
            results = await asyncio.gather(*(import_string(PARTS[name])().get_result(executor) for name in names))
        errors = {name: result.error for name, result in zip(names, results, strict=True)}
        checks = {name: "ok" if error is None else str(error) for name, error in errors.items()}
        failing = [name for name, error in errors.items() if error is not None]
        return JsonResponse(
            {"status": "unavailable" if failing else "ok", "failing": failing, "checks": checks},
            status=503 if failing else 200,
        )


health = HealthView.as_view()
