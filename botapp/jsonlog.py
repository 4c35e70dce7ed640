"""JSON log lines (LOG_FORMAT=json): one object per line, redacted like the plain ones.

`botapp.redaction.RedactSecretsFilter` (on every handler) redacts the message and the traceback text,
but python-json-logger renders a record's exception afresh from ``record.exc_info``, and prints the
extra fields (``log.info(..., extra={...})``) that the plain format never shows: so every value of the
line is redacted once more here, just before it is written.
"""

from __future__ import annotations

from typing import Any

from pythonjsonlogger.json import JsonFormatter

from botapp.redaction import redact_data

# The fields of every line, renamed: {"time", "level", "logger", "message"} (+ "exc_info", extras).
FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
RENAME = {"asctime": "time", "levelname": "level", "name": "logger"}


class RedactingJsonFormatter(JsonFormatter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", FORMAT)
        kwargs.setdefault("rename_fields", RENAME)
        super().__init__(*args, **kwargs)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        log_data.pop("color_message", None)  # uvicorn's copy of the message with terminal colours
        return redact_data(log_data)
