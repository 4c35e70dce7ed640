"""Optional error reporting to Sentry: `init_sentry` runs from config/settings.py only when SENTRY_DSN is set.

Every process that loads the settings (web, worker, beat, bot) reports its unhandled errors (and, with
SENTRY_TRACES_SAMPLE_RATE above 0, a sample of traces), with the Django and Celery integrations.
Nothing personal leaves: no user data by default (``send_default_pii=False``), no request bodies (the
webhook's bodies are users' messages), and `redact_event` passes every string of every event and
transaction (exception values, messages, breadcrumbs, local variables, span descriptions such as a Bot
API URL) through `botapp.redaction.redact`, which masks the bot token, the keys and the passwords.
"""

from __future__ import annotations

from typing import Any

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration


def redact_event(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """`before_send` / `before_send_transaction`: the event with every secret masked."""
    from botapp.redaction import redact_data

    return redact_data(event)


def init_sentry(dsn: str, *, environment: str = "", traces_sample_rate: float = 0.0, **options: Any) -> None:
    sentry_sdk.init(
        dsn=dsn,
        environment=environment or None,
        traces_sample_rate=traces_sample_rate,
        send_default_pii=False,
        max_request_body_size="never",
        integrations=[DjangoIntegration(), CeleryIntegration()],
        before_send=redact_event,
        before_send_transaction=redact_event,
        **options,
    )
