"""Production logging and error reporting: LOG_FORMAT=json writes one JSON object per line (redacted like
the plain lines), and SENTRY_DSN turns on Sentry with the Django and Celery integrations, sending no
secret (a recording transport stands in for the network)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

from tests.ops.test_settings import PROBE_KEY, load_settings

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "7123456789:probe-token-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123"
FAKE_DSN = "https://publickey@o0.ingest.sentry.io/0"


def run_python(script: str, **env: str) -> subprocess.CompletedProcess:
    """`script` in a fresh process with the project's settings and `env` (nothing from a .env wins over it)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "LOG_"))}
    environment.update(
        DJANGO_SETTINGS_MODULE="config.settings", SECRET_KEY=PROBE_KEY, DEBUG="false", BOT_TOKEN=TOKEN, **env
    )
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


# --- JSON logs ----------------------------------------------------------------------------------------
LOG_SCRIPT = """
import logging, os, django
django.setup()
log = logging.getLogger("botapp.probe")
token = os.environ["BOT_TOKEN"]
log.warning("sending with %s", token)
try:
    raise RuntimeError(f"upload to https://api.telegram.org/bot{token}/sendPhoto failed")
except RuntimeError:
    log.exception("delivery failed")
log.info("with an extra field", extra={"url": f"https://api.telegram.org/bot{token}/getMe"})
"""


@pytest.mark.slow
def test_json_logs_are_one_redacted_object_per_line():
    result = run_python(LOG_SCRIPT, LOG_FORMAT="json", LOG_LEVEL="INFO")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    probe = [record for record in records if record["logger"] == "botapp.probe"]
    assert [(r["level"], r["message"]) for r in probe] == [
        ("WARNING", "sending with [redacted]"),
        ("ERROR", "delivery failed"),
        ("INFO", "with an extra field"),
    ]
    assert "time" in probe[0]
    assert "Traceback" in probe[1]["exc_info"] and "RuntimeError" in probe[1]["exc_info"]
    assert probe[2]["url"] == "https://api.telegram.org/bot[redacted]/getMe"
    assert TOKEN not in result.stderr and TOKEN.split(":")[1] not in result.stderr


@pytest.mark.slow
def test_plain_logs_stay_the_default():
    result = run_python(LOG_SCRIPT, LOG_LEVEL="INFO")
    assert result.returncode == 0, result.stderr
    assert " WARNING botapp.probe: sending with [redacted]" in result.stderr
    assert not result.stderr.lstrip().startswith("{")
    assert TOKEN not in result.stderr


def test_an_unknown_log_format_is_refused():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="LOG_FORMAT must be plain or json"):
        load_settings({"SECRET_KEY": PROBE_KEY, "LOG_FORMAT": "xml"})


# --- Sentry -------------------------------------------------------------------------------------------
def test_sentry_starts_only_with_a_dsn():
    with mock.patch("config.sentry.init_sentry") as init:
        load_settings({"SECRET_KEY": PROBE_KEY})
        init.assert_not_called()
        load_settings(
            {
                "SECRET_KEY": PROBE_KEY,
                "SENTRY_DSN": FAKE_DSN,
                "SENTRY_ENVIRONMENT": "staging",
                "SENTRY_TRACES_SAMPLE_RATE": "0.25",
            }
        )
    init.assert_called_once_with(FAKE_DSN, environment="staging", traces_sample_rate=0.25)


SENTRY_SCRIPT = """
import json, os
import sentry_sdk
from sentry_sdk.transport import Transport

envelopes = []

class Recording(Transport):  # instead of the network
    def capture_envelope(self, envelope):
        envelopes.append(envelope)

real_init = sentry_sdk.init
def init(*args, **kwargs):
    return real_init(*args, transport=Recording, **kwargs)
sentry_sdk.init = init

import django
django.setup()

client = sentry_sdk.get_client()
token = os.environ["BOT_TOKEN"]
def deliver(url):
    raise ConnectionError(f"cannot reach {url}")
try:
    deliver(f"https://api.telegram.org/bot{token}/sendPhoto")
except ConnectionError:
    sentry_sdk.capture_exception()
sentry_sdk.capture_message(f"message with {token}")
sentry_sdk.flush()
events = [item.payload.json for envelope in envelopes for item in envelope.items if item.type == "event"]
print(json.dumps({
    "active": client.is_active(),
    "integrations": sorted(client.integrations),
    "send_default_pii": client.options["send_default_pii"],
    "environment": client.options["environment"],
    "traces_sample_rate": client.options["traces_sample_rate"],
    "events": events,
}, default=str))
"""


@pytest.mark.slow
def test_sentry_with_a_dsn_reports_with_integrations_and_no_secret():
    result = run_python(
        SENTRY_SCRIPT, SENTRY_DSN=FAKE_DSN, SENTRY_ENVIRONMENT="staging", SENTRY_TRACES_SAMPLE_RATE="0.5"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["active"] is True
    assert {"django", "celery"} <= set(report["integrations"])
    assert report["send_default_pii"] is False
    assert report["environment"] == "staging"
    assert report["traces_sample_rate"] == 0.5
    events = report["events"]
    assert len(events) == 2
    exception = events[0]["exception"]["values"][-1]
    assert exception["type"] == "ConnectionError"
    assert exception["value"] == "cannot reach https://api.telegram.org/bot[redacted]/sendPhoto"
    assert events[1]["message"] == "message with [redacted]"
    sent = json.dumps(events)
    assert TOKEN not in sent and TOKEN.split(":")[1] not in sent  # nor in local variables or breadcrumbs


@pytest.mark.slow
def test_sentry_stays_off_without_a_dsn():
    result = run_python("import django, sentry_sdk; django.setup(); print(sentry_sdk.get_client().is_active())")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


# --- uvicorn's access log under the redaction filter -------------------------------------------------------
def test_uvicorn_access_lines_are_redacted_and_still_formatted(capsys):
    """uvicorn's access formatter unpacks the record's arguments: the filter keeps them (redacted), so
    the web process prints its access lines instead of a "Logging error" for each request."""
    import io
    import logging

    from uvicorn.logging import AccessFormatter

    from botapp.redaction import RedactSecretsFilter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False))
    handler.addFilter(RedactSecretsFilter())
    logger = logging.getLogger("uvicorn.access")
    logger.addHandler(handler)
    try:
        key = "AIza" + "x" * 35
        logger.warning('%s - "%s %s HTTP/%s" %d', "10.0.0.1:5000", "GET", f"/healthz?key={key}", "1.1", 200)
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue() == '10.0.0.1:5000 - "GET /healthz?key=[redacted] HTTP/1.1" 200 OK\n'
    assert "Logging error" not in capsys.readouterr().err
