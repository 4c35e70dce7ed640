"""Django's makemessages, minus one false alarm: xgettext marks a label such as "Discount % on a top-up"
as a Python format string ("% o" reads as an octal directive), and compilemessages (msgfmt
--check-format) then refuses any translation without the same directive. The admin's strings use
%(name)s placeholders only, so a "%" followed by a space in a msgid without one is a plain percent sign:
such entries are marked no-python-format before the catalogue is merged (`make messages`).
"""

from __future__ import annotations

import re
from pathlib import Path

from django.core.management.commands import makemessages

FLAGGED = re.compile(r'^#, (?P<flags>.*)\n(?P<msg>(?:msgctxt .*\n(?:".*"\n)*)?msgid (?:.*\n)(?:".*"\n)*)', re.MULTILINE)


def plain_percent(msgid_lines: str) -> bool:
    text = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', msgid_lines.split("msgid ", 1)[1]))
    return "% " in text and "%(" not in text and not re.search(r"%[sdifr]", text)


def unflag(pot: str) -> str:
    def fix(match: re.Match) -> str:
        flags = [flag.strip() for flag in match["flags"].split(",")]
        if "python-format" in flags and plain_percent(match["msg"]):
            flags = ["no-python-format" if flag == "python-format" else flag for flag in flags]
        return f"#, {', '.join(flags)}\n{match['msg']}"

    return FLAGGED.sub(fix, pot)


class Command(makemessages.Command):
    def write_po_file(self, potfile, locale):
        path = Path(potfile)
        path.write_text(unflag(path.read_text(encoding="utf-8")), encoding="utf-8")
        super().write_po_file(potfile, locale)
