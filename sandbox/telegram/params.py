"""Request parameter parsing: JSON, urlencoded and multipart bodies, typed accessors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import BodyPartReader, MultipartReader, web

from .errors import ApiError, bad_request

MAX_UPLOAD_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart request."""

    field: str
    filename: str | None
    content_type: str | None
    data: bytes

    @property
    def size(self) -> int:
        """Size in bytes."""
        return len(self.data)


class Params:
    """Method parameters with Telegram-like coercion (form values arrive as strings)."""

    def __init__(self, values: dict[str, Any] | None = None, uploads: dict[str, Upload] | None = None) -> None:
        self.values: dict[str, Any] = dict(values or {})
        self.uploads: dict[str, Upload] = dict(uploads or {})

    def has(self, name: str) -> bool:
        """Whether a non-empty value (or file part) was given."""
        value = self.values.get(name)
        return (value is not None and value != "") or name in self.uploads

    def raw(self, name: str, default: Any = None) -> Any:
        """The value as received."""
        value = self.values.get(name)
        return default if value is None else value

    def get_str(self, name: str, *, required: bool = False, default: str | None = None) -> str | None:
        """A string parameter."""
        value = self.values.get(name)
        if value is None:
            if required:
                raise bad_request(f'parameter "{name}" is required')
            return default
        if isinstance(value, (dict, list)):
            return json.dumps(value, ensure_ascii=False)
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def get_int(self, name: str, *, required: bool = False, default: int | None = None) -> int | None:
        """An integer parameter."""
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise bad_request(f'parameter "{name}" is required')
            return default
        if isinstance(value, bool):
            return int(value)
        try:
            return int(value)
        except (TypeError, ValueError):
            try:
                as_float = float(value)
            except (TypeError, ValueError):
                raise bad_request(f'field "{name}" must be of type Integer') from None
            if as_float != int(as_float):
                raise bad_request(f'field "{name}" must be of type Integer') from None
            return int(as_float)

    def get_bool(self, name: str, default: bool = False) -> bool:
        """A boolean parameter ("true"/"false"/"1"/"0" or JSON booleans)."""
        value = self.values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            return bool(value)
        text = str(value).strip().lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise bad_request(f'field "{name}" must be of type Boolean')

    def get_json(self, name: str, *, required: bool = False) -> Any:
        """A JSON-serialized parameter (object/array); accepts already decoded JSON bodies."""
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise bad_request(f'parameter "{name}" is required')
            return None
        if isinstance(value, (dict, list)):
            return value
        try:
            return json.loads(value)
        except (TypeError, ValueError):
            raise bad_request(f"can't parse {name} JSON object") from None

    def get_chat_id(self, name: str = "chat_id", *, required: bool = True) -> int | str | None:
        """A chat id: integer or ``@username``."""
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise bad_request(f"{name} is empty")
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = str(value).strip()
        if text.startswith("@"):
            return text
        try:
            return int(text)
        except ValueError:
            raise bad_request("chat not found") from None

    def get_input_file(self, name: str) -> Upload | str | None:
        """A file parameter: an Upload (direct part or ``attach://``), or a file_id/URL string."""
        if name in self.uploads:
            return self.uploads[name]
        value = self.values.get(name)
        if value is None or value == "":
            return None
        return self.resolve_attach(str(value))

    def resolve_attach(self, value: str) -> Upload | str:
        """Map ``attach://<name>`` to its uploaded part; other strings pass through."""
        if value.startswith("attach://"):
            key = value[len("attach://") :]
            upload = self.uploads.get(key)
            if upload is None:
                raise bad_request(f"file attach://{key} not found in the request")
            return upload
        return value

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly copy for the call log (uploads summarised)."""
        record: dict[str, Any] = {}
        for key, value in self.values.items():
            if isinstance(value, str) and value[:1] in "[{":
                try:
                    record[key] = json.loads(value)
                    continue
                except ValueError:
                    pass
            record[key] = value
        for key, upload in self.uploads.items():
            record.setdefault(key, {"upload": upload.filename, "size": upload.size})
        return record


async def read_multipart(reader: MultipartReader, max_upload: int = MAX_UPLOAD_BYTES) -> Params:
    """Read every part of a multipart body: text parts become values, file parts uploads."""
    values: dict[str, Any] = {}
    uploads: dict[str, Upload] = {}
    total = 0
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            continue
        name = part.name or ""
        data = bytearray()
        while True:
            chunk = await part.read_chunk(256 * 1024)
            if not chunk:
                break
            data.extend(chunk)
            total += len(chunk)
            if total > max_upload:
                raise ApiError(413, "Request Entity Too Large")
        if part.filename is not None:
            uploads[name] = Upload(name, part.filename, part.headers.get("Content-Type"), bytes(data))
        else:
            charset = part.get_charset(default="utf-8")
            values[name] = bytes(data).decode(charset, errors="replace")
    return Params(values, uploads)


async def parse_request(request: web.Request, max_upload: int = MAX_UPLOAD_BYTES) -> Params:
    """Parse query string plus a JSON, urlencoded or multipart body."""
    values: dict[str, Any] = dict(request.query)
    content_type = request.content_type
    if request.method == "GET" or not request.body_exists:
        return Params(values)
    if content_type.startswith("multipart/"):
        parsed = await read_multipart(await request.multipart(), max_upload)
        values.update(parsed.values)
        return Params(values, parsed.uploads)
    body = await request.read()
    if len(body) > max_upload:
        raise ApiError(413, "Request Entity Too Large")
    if content_type == "application/json" or body[:1] == b"{":
        try:
            decoded = json.loads(body or b"{}")
        except ValueError:
            raise bad_request("can't parse JSON encoded request") from None
        if not isinstance(decoded, dict):
            raise bad_request("can't parse JSON encoded request")
        values.update(decoded)
        return Params(values)
    values.update(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
    return Params(values)
