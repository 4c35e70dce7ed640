"""The emulator's shape: one-way dependencies, no Django, modules a reader can hold in mind."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from sandbox.telegram import BotAPIEmulator
from sandbox.telegram.api import EmulatorAPI

PACKAGE = Path(__file__).resolve().parents[2] / "sandbox" / "telegram"


def _imports(path: Path) -> set[str]:
    """Every module a file imports, relative ones as written (".server", "..state"), any nesting."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _python_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_user_side_never_imports_the_server() -> None:
    user_side = [PACKAGE / "client.py", PACKAGE / "api.py", *sorted((PACKAGE / "webchat").glob("*.py"))]
    for path in user_side:
        imported = _imports(path)
        offenders = {m for m in imported if m.lstrip(".").split(".")[0] in ("server", "sandbox")}
        offenders |= {m for m in imported if m.endswith((".server", "telegram.server"))}
        assert not offenders, f"{path.name} imports {offenders}"


def test_no_django_anywhere_in_the_emulator() -> None:
    for path in _python_files():
        assert not any(m.split(".")[0] == "django" for m in _imports(path)), path


def test_no_module_is_a_wall_of_code() -> None:
    sizes = {path.relative_to(PACKAGE).as_posix(): len(path.read_text().splitlines()) for path in _python_files()}
    assert all(lines <= 600 for lines in sizes.values()), sizes


def test_the_emulator_implements_the_protocol_the_clients_rely_on() -> None:
    members = [name for name in dir(EmulatorAPI) if not name.startswith("_")]
    members += list(EmulatorAPI.__annotations__)
    emu = BotAPIEmulator()
    for name in members:
        assert hasattr(emu, name), f"BotAPIEmulator lacks {name}"
        wanted = getattr(EmulatorAPI, name, None)
        if callable(wanted):
            expected = list(inspect.signature(wanted).parameters)[1:]
            actual = list(inspect.signature(getattr(emu, name)).parameters)
            assert actual == expected, f"{name}: {actual} != {expected}"
