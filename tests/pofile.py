"""A small reader of gettext .po files (enough for the catalogues makemessages writes): the tests check
that every message of the admin's catalogue is translated, without a dependency for it."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Entry:
    msgid: str = ""
    msgctxt: str | None = None
    msgid_plural: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)  # msgstr -> {0: ...}; msgstr[n] -> {n: ...}
    flags: set[str] = field(default_factory=set)
    references: list[str] = field(default_factory=list)

    @property
    def translated(self) -> bool:
        return bool(self.msgstr) and all(self.msgstr.values()) and "fuzzy" not in self.flags

    def __str__(self) -> str:
        context = f"[{self.msgctxt}] " if self.msgctxt else ""
        return f"{context}{self.msgid!r} ({', '.join(self.references) or 'no reference'})"


def parse(path: Path | str) -> list[Entry]:
    """The entries of a .po file, the header (msgid "") and obsolete (#~) entries left out."""
    entries: list[Entry] = []
    entry = Entry()
    key: tuple[str, int] | None = None
    started = False

    def finish() -> None:
        nonlocal entry, started, key
        if started and entry.msgid:
            entries.append(entry)
        entry, started, key = Entry(), False, None

    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            finish()
            continue
        if line.startswith("#~"):
            continue
        if line.startswith("#,"):
            if started:
                finish()
            entry.flags.update(flag.strip() for flag in line[2:].split(","))
            continue
        if line.startswith("#:"):
            if started:
                finish()
            entry.references.extend(line[2:].split())
            continue
        if line.startswith("#"):
            continue
        if line.startswith('"'):
            if key is None:
                raise ValueError(f"{path}: a continuation line outside a message: {raw!r}")
            value = ast.literal_eval(line)
            name, index = key
            if name == "msgstr":
                entry.msgstr[index] += value
            else:
                setattr(entry, name, (getattr(entry, name) or "") + value)
            continue
        word, _, rest = line.partition(" ")
        value = ast.literal_eval(rest)
        if started and (word == "msgctxt" or (word == "msgid" and key and key[0] == "msgstr")):
            finish()
        started = True
        if word.startswith("msgstr"):
            index = int(word[7:-1]) if word.startswith("msgstr[") else 0
            entry.msgstr[index] = value
            key = ("msgstr", index)
        elif word in ("msgid", "msgid_plural", "msgctxt"):
            setattr(entry, word, value)
            key = (word, 0)
        else:
            raise ValueError(f"{path}: cannot read {raw!r}")
    finish()
    return entries
