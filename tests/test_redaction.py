"""botapp.redaction: every secret the process knows, and anything shaped like one, is masked."""

from __future__ import annotations

import io
import logging

import pytest

from botapp.redaction import MASK, RedactSecretsFilter, error_text, install_log_redaction, redact

pytestmark = pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
SECRET_HALF = "fake-bot-secret-" + "x" * 20  # shaped like a token, obviously not one
TOKEN = f"123456789:{SECRET_HALF}"


@pytest.fixture
def secrets(settings, monkeypatch):
    settings.BOT_TOKEN = TOKEN
    settings.GOOGLE_API_KEY = "gemini-key-0123456789"
    settings.GOOGLE_VERTEX_API_KEY = "vertex-key-9876543210"
    settings.WEBHOOK_SECRET = "hook-secret-42"
    settings.REDIS_URL = "redis://:redis-pass-77@cache.internal:6379/0"
    settings.CELERY_BROKER_URL = "amqp://bot:amqp%2Fpass@mq.internal:5672//"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws/secret+key==")  # boto reads it from the environment
    settings.DATABASES = {**settings.DATABASES, "default": {**settings.DATABASES["default"], "PASSWORD": "db-pass-55"}}
    return settings


@pytest.mark.parametrize(
    "leak",
    [
        f"https://api.telegram.org/file/bot{TOKEN}/photos/file_1.jpg",
        f"https://api.telegram.org/bot{TOKEN}/sendPhoto",
        TOKEN.split(":")[1],  # the token's secret half alone
        "key=gemini-key-0123456789",
        "x-goog-api-key: vertex-key-9876543210",
        "X-Telegram-Bot-Api-Secret-Token: hook-secret-42",
        "redis://:redis-pass-77@cache.internal:6379/0",
        "amqp://bot:amqp%2Fpass@mq.internal:5672//",  # URL-encoded, as it appears in a URL
        "amqp/pass",
        "connection to server failed: password=db-pass-55",
        "aws/secret+key==",
        "aws%2Fsecret%2Bkey%3D%3D",
    ],
)
def test_known_secrets_are_masked(secrets, leak):
    text = redact(f"error: {leak} (while sending)")
    assert MASK in text
    for secret in (SECRET_HALF, "gemini-key", "vertex-key", "hook-secret", "redis-pass",
                   "amqp%2Fpass", "amqp/pass", "db-pass", "aws/secret", "aws%2Fsecret"):  # fmt: skip
        assert secret not in text


def test_shapes_are_masked_without_configuration(settings):
    settings.BOT_TOKEN = ""
    other_bot = "987654321:other-fake-secret-" + "y" * 20
    google_key = "AIza" + "z" * 35  # the shape of a Google API key
    text = redact(f"/bot{other_bot}/getFile and key={google_key}")
    assert other_bot not in text and google_key not in text


def test_ordinary_text_is_left_alone(secrets):
    text = "generation #12 failed: HTTP 404 on sendPhoto after 3 attempts"
    assert redact(text) == text


def test_error_text_is_typed_redacted_and_bounded(secrets):
    exc = ConnectionError(f"Cannot download https://x/file/bot{TOKEN}/p.jpg " + "x" * 5000)
    text = error_text(exc, limit=300)
    assert text.startswith("ConnectionError: Cannot download https://x/file/bot[redacted]/p.jpg")
    assert len(text) == 300 and TOKEN not in text


def test_the_log_filter_redacts_message_arguments_and_traceback(secrets):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecretsFilter())
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    try:
        try:
            raise RuntimeError(f"GET https://api.telegram.org/file/bot{TOKEN}/a.jpg: 404")
        except RuntimeError as exc:
            logger.error("download of %s failed: %s", f"/file/bot{TOKEN}/a.jpg", exc, exc_info=True)
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert "Traceback" in output and "RuntimeError" in output
    assert TOKEN not in output and SECRET_HALF not in output
    assert output.count(MASK) >= 3


def test_every_configured_handler_redacts():
    """LOGGING gives the console handler the filter; install_log_redaction() (run when the app is ready)
    adds it to handlers configured outside LOGGING, such as uvicorn's."""
    outside = logging.StreamHandler(io.StringIO())
    logging.getLogger("uvicorn.error").addHandler(outside)
    try:
        install_log_redaction()
        loggers = [logging.getLogger()] + [
            lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger)
        ]
        handlers = [h for lg in loggers for h in lg.handlers if not type(h).__name__.startswith("LogCapture")]
        assert handlers and outside in handlers
        for handler in handlers:
            assert any(isinstance(f, RedactSecretsFilter) for f in handler.filters), handler
    finally:
        logging.getLogger("uvicorn.error").removeHandler(outside)


def test_yookassas_basic_auth_header_is_masked_too(settings):
    """The SDK sends `Authorization: Basic base64(shop:key)`: a logged header or a proxy's trace holds the
    key in that form, which masking the key itself does not catch."""
    import base64

    settings.YOOKASSA_SHOP_ID, settings.YOOKASSA_SECRET_KEY = "506751", "test_SecretKey-0123456789"
    header = "Basic " + base64.b64encode(b"506751:test_SecretKey-0123456789").decode()
    assert (
        redact(f"request headers: {{'Authorization': '{header}'}}")
        == f"request headers: {{'Authorization': 'Basic {MASK}'}}"
    )
