"""Secrets never reach the database, a log or the admin: the one place that removes them from text.

Exception texts are the usual leak: aiohttp puts the URL it failed on into the message, and the Bot
API's file URLs are ``{server}/file/bot<TOKEN>/<path>``; a Google error can echo ``?key=<API key>``;
a database or broker error can print its URL with the password. So:

- `redact(text)` replaces every secret this process knows (the bot token, Google API keys, the webhook
  secret, Django's SECRET_KEY, the admin password, the database, Redis and broker passwords, the S3
  keys, and their URL-encoded forms) and anything shaped like a bot token or a Google API key with
  ``[redacted]``;
- `error_text(exc)` is how an exception becomes stored or displayed text (``GenRequest.error_message``,
  the admin, operator alerts): the exception's type and message, redacted and cut to a length;
- `RedactSecretsFilter` is on every logging handler (``LOGGING`` in config/settings.py, and
  `install_log_redaction()` adds it to handlers that others configured, such as uvicorn's and
  Celery's): it redacts the message, its arguments and the formatted traceback of every record.
"""

from __future__ import annotations

import base64
import logging
import os
import re
from functools import lru_cache
from typing import Any
from urllib.parse import quote, unquote, urlsplit

MASK = "[redacted]"
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words; no real secret is that short

# Shapes of secrets, whatever the configuration: a bot token (in a Bot API URL or alone) and a
# Google API key.
PATTERNS = (
    re.compile(r"\d{5,}:[A-Za-z0-9_-]{30,}"),  # Telegram bot token
    re.compile(r"(?<=/bot)\d+:[^/\s'\"]+"),  # .../bot<token>/... in any Bot API URL (test tokens too)
    re.compile(r"AIza[0-9A-Za-z_-]{30,}"),  # Google API key
)

SECRET_SETTINGS = (
    "BOT_TOKEN",
    "WEBHOOK_SECRET",
    "GOOGLE_API_KEY",
    "GOOGLE_VERTEX_API_KEY",
    "SECRET_KEY",
    "ADMIN_PASSWORD",
    "YOOKASSA_SECRET_KEY",
)
# Credentials that only the libraries read, from the environment (boto3 for S3).
ENV_SECRETS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
URL_SETTINGS = ("REDIS_URL", "CELERY_BROKER_URL")  # the database's password is in DATABASES


def _password_of(url: str) -> str:
    try:
        return unquote(urlsplit(url).password or "")
    except ValueError:
        return ""


def _settings_secrets() -> tuple[str, ...]:
    try:  # imported here: the providers that use this module stay free of Django at import time
        from django.conf import settings
    except ImportError:  # the interpreter is shutting down (aiohttp logs "Unclosed client session")
        return ()
    if not settings.configured:
        return ()
    found: list[str] = [str(getattr(settings, name) or "") for name in SECRET_SETTINGS]
    found += [_password_of(str(getattr(settings, name) or "")) for name in URL_SETTINGS]
    for database in settings.DATABASES.values():
        found.append(str(database.get("PASSWORD") or ""))
    found += [os.environ.get(name, "") for name in ENV_SECRETS]
    shop, key = (
        str(getattr(settings, "YOOKASSA_SHOP_ID", "") or ""),
        str(getattr(settings, "YOOKASSA_SECRET_KEY", "") or ""),
    )
    if shop and key:  # YooKassa's Basic auth header: base64 of "shop:key", as a proxy or a trace may log it
        found.append(base64.b64encode(f"{shop}:{key}".encode()).decode())
    return tuple(found)


@lru_cache(maxsize=8)
def _compile(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    variants: set[str] = set()
    for secret in secrets:
        if len(secret) < MIN_SECRET_LENGTH:
            continue
        variants.update({secret, quote(secret, safe=""), quote(secret)})
        if ":" in secret:  # a bot token's secret half can travel alone
            tail = secret.split(":", 1)[1]
            if len(tail) >= 8:
                variants.add(tail)
    if not variants:
        return None
    # Longest first, so that a secret containing another is masked whole.
    return re.compile("|".join(re.escape(v) for v in sorted(variants, key=len, reverse=True)))


def redact(text: str, *, extra: tuple[str, ...] = ()) -> str:
    """`text` with every known secret (and `extra` values) replaced by ``[redacted]``."""
    if not text:
        return text
    text = str(text)
    pattern = _compile(tuple(sorted(set(_settings_secrets() + tuple(extra)))))
    if pattern is not None:
        text = pattern.sub(MASK, text)
    for shape in PATTERNS:
        text = shape.sub(MASK, text)
    return text


def redact_data(value: Any) -> Any:
    """`value` with every string in it redacted: a string, or dicts, lists and tuples of them, nested
    (a JSON log line's fields, a Sentry event). Anything else is returned as it is."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(item) for item in value]
    return value


def error_text(exc: BaseException, *, limit: int = 2000) -> str:
    """How an exception is stored or shown: ``Type: message``, redacted, at most `limit` characters."""
    message = str(exc)
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return redact(text)[:limit]


# --- logging ------------------------------------------------------------------------------------------
class RedactSecretsFilter(logging.Filter):
    """Redacts a record in place (message, arguments, traceback); never drops one."""

    _formatter = logging.Formatter()

    # Loggers whose formatter reads the arguments themselves (uvicorn's access formatter unpacks
    # client, method, path, version and status): their arguments are redacted in place, not merged.
    KEEP_ARGS = frozenset({"uvicorn.access"})

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name in self.KEEP_ARGS and isinstance(record.args, tuple):
            record.msg = redact(str(record.msg))
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep the raw parts, redacted
            message = f"{record.msg} {record.args}"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install_log_redaction() -> None:
    """Put the filter on every handler configured so far (root, named loggers: uvicorn, Celery)."""
    loggers = [logging.getLogger()] + [
        logger for logger in logging.root.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, RedactSecretsFilter) for f in handler.filters):
                handler.addFilter(RedactSecretsFilter())
