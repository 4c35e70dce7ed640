"""Reading the configuration strictly: a mistake in `.env` or the environment is named, never ignored.

django-environ, left alone, skips a malformed `.env` line with a warning that names no line, reads
`DEBUG=maybe` as False, and fails on `MAX_INFLIGHT_PER_USER=abc` with a bare ValueError. Here:

- `read_env_file(path)` refuses a line that is not `NAME=value` (or a comment), naming the file, the
  line number and the line;
- `StrictEnv` (what settings.py reads through) refuses a value that does not fit its type (a boolean
  that is none of true/false/yes/no/on/off/1/0, a number that is not one, ...), naming the variable,
  its value and where it came from (`.env` line N, or the environment).

Both raise ImproperlyConfigured; `manage.py` prints it as one readable line instead of a traceback.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")
BOOLEAN_FALSE_STRINGS = ("false", "off", "no", "n", "0", "")
_origins: dict[str, str] = {}


def read_env_file(path: Path) -> None:
    """Load `path` into os.environ (values already in the environment win), refusing bad lines."""
    if not path.exists():
        return
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ImproperlyConfigured(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ASSIGNMENT.match(line)
        if match is None:
            raise ImproperlyConfigured(
                f"{path.name} line {number} is not NAME=value: {line.strip()[:80]!r}. "
                "Fix or remove it (a comment starts with #)."
            )
        value = match.group(2).strip()
        if value[:1] in ("'", '"') and (len(value) < 2 or value[-1] != value[0]):
            raise ImproperlyConfigured(
                f"{path.name} line {number}: the value of {match.group(1)} opens a quote it never closes."
            )
        _origins.setdefault(match.group(1), f"{path.name} line {number}")
    environ.Env.read_env(path, overwrite=False)


def origin(name: str) -> str:
    """Where a variable's value came from, for error messages."""
    found = _origins.get(name)
    if found and os.environ.get(name) is not None:
        return found
    return "the environment"


class StrictEnv(environ.Env):
    def get_value(self, var: str, cast: Any = None, default: Any = environ.Env.NOTSET, parse_default: bool = False):
        raw = self.ENVIRON.get(var)
        if cast is bool and raw is not None:
            word = raw.strip().lower()
            if word not in self.BOOLEAN_TRUE_STRINGS and word not in BOOLEAN_FALSE_STRINGS:
                raise ImproperlyConfigured(
                    f"{var}={raw!r} (from {origin(var)}) is not a yes/no value: use true or false."
                )
        try:
            return super().get_value(var, cast=cast, default=default, parse_default=parse_default)
        except ImproperlyConfigured:
            raise
        except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
            kind = getattr(cast, "__name__", None) or "value of this kind"
            raise ImproperlyConfigured(
                f"{var}={raw!r} (from {origin(var)}) is not a valid {kind}: {exc}"
            ) from None


def write_env_value(env_file: Path, name: str, value: str, *, comment: str = "") -> None:
    """Set `name=value` in `env_file`: an existing line of that name is replaced in place, else the
    line (after `comment`) is appended. A new file is readable only by its owner (it holds secrets)."""
    lines = env_file.read_text(encoding="utf-8").splitlines() if env_file.exists() else []
    for index, line in enumerate(lines):
        match = _ASSIGNMENT.match(line)
        if match and match.group(1) == name:
            lines[index] = f"{name}={value}"
            break
    else:
        lines += ([f"# {comment}"] if comment else []) + [f"{name}={value}"]
    created = not env_file.exists()
    env_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if created:
        env_file.chmod(0o600)
