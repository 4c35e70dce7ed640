"""The translation catalogue: every user-facing text, in Russian (default) and English.

Texts live in `botapp/locales/<lang>/<domain>.toml` (one file per area, so features do not collide);
a key `menu.title` in `bot.toml` is looked up as `t("menu.title", lang)`. Placeholders use
`str.format` syntax. `tests/test_i18n.py` checks that both languages define the same keys with the
same placeholders.
"""

from __future__ import annotations

import string
import tomllib
from decimal import Decimal
from functools import cache
from pathlib import Path

LOCALES_DIR = Path(__file__).parent / "locales"
DEFAULT_LANGUAGE = "ru"
LANGUAGES = ("ru", "en")


def _flatten(prefix: str, node: dict, out: dict[str, str]) -> None:
    for key, value in node.items():
        full = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            _flatten(full, value, out)
        else:
            out[full] = str(value)


@cache
def catalogue(lang: str) -> dict[str, str]:
    texts: dict[str, str] = {}
    for path in sorted((LOCALES_DIR / lang).glob("*.toml")):
        with path.open("rb") as fh:
            _flatten("", tomllib.load(fh), texts)
    return texts


def normalize_language(lang: str | None) -> str:
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def t(key: str, lang: str | None = None, /, **params: object) -> str:
    """The text for `key` in `lang` (falling back to Russian, then to the key itself)."""
    lang = normalize_language(lang)
    text = catalogue(lang).get(key) or catalogue(DEFAULT_LANGUAGE).get(key) or key
    return text.format(**params) if params else text


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def fmt_tokens(value: Decimal | int | str) -> str:
    """A token amount as the texts show it: 1.50 -> "1.5", 10.00 -> "10", never an exponent."""
    amount = Decimal(value).quantize(Decimal("0.01"))
    text = f"{amount:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
