"""The catalogue: both languages define the same keys with the same placeholders, every key the
bot's code uses exists, and every text is valid Telegram HTML for our parse mode."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from botapp.i18n import LANGUAGES, catalogue, placeholders, t
from botapp.services import exceptions

BOT_CODE = [
    Path("botapp/keyboards.py"),
    Path("botapp/bot.py"),
    Path("botapp/middlewares.py"),
    *sorted(Path("botapp/handlers").glob("*.py")),
]
ALLOWED_TAGS = {"b", "i", "code", "a", "u", "s", "pre"}
KEY_RE = re.compile(
    r'"((?:btn|common|gen|menu|start|balance|tx|pay|profile|history|settings|promo|referral|help|'
    r'commands|errors)\.[a-z_.]+)"'
)


def test_languages_have_the_same_keys():
    ru, en = catalogue("ru"), catalogue("en")
    assert sorted(set(ru) - set(en)) == [], "missing in English"
    assert sorted(set(en) - set(ru)) == [], "missing in Russian"


@pytest.mark.parametrize("key", sorted(catalogue("ru")))
def test_same_placeholders(key):
    assert placeholders(catalogue("ru")[key]) == placeholders(catalogue("en")[key]), key


def test_every_domain_error_has_a_text():
    codes = {
        cls.code
        for cls in vars(exceptions).values()
        if isinstance(cls, type) and issubclass(cls, exceptions.DomainError)
    }
    for lang in LANGUAGES:
        missing = [code for code in codes if f"errors.{code}" not in catalogue(lang)]
        assert missing == [], (lang, missing)


def test_every_key_used_in_the_bot_exists():
    used: set[str] = set()
    for path in BOT_CODE:
        used |= set(KEY_RE.findall(path.read_text()))
    dynamic_prefixes = ("errors.", "commands.")
    for lang in LANGUAGES:
        missing = sorted(k for k in used if k not in catalogue(lang) and not k.startswith(dynamic_prefixes))
        assert missing == [], (lang, missing)


@pytest.mark.parametrize(
    "prefix, suffixes",
    [
        ("gen.choose_model", ["image", "video"]),
        ("gen.prompt_ask", ["image", "video", "extend"]),
        ("gen.photos_ask", ["image", "first", "last", "reference"]),
        ("btn.photos", ["image", "first", "last", "reference"]),
        ("history.status", ["created", "queued", "running", "succeeded", "failed", "cancelled"]),
        ("tx", ["deposit", "charge", "refund", "bonus", "referral", "promo", "admin_adjustment", "payment_refund"]),
        ("commands", ["start", "menu", "help", "balance", "cancel"]),
        ("settings.choose", ["language", "image_model", "video_model", "ratio", "duration", "resolution"]),
    ],
)
def test_dynamic_keys_exist(prefix, suffixes):
    for lang in LANGUAGES:
        for suffix in suffixes:
            assert f"{prefix}.{suffix}" in catalogue(lang), (lang, prefix, suffix)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_texts_are_balanced_html(lang):
    for key, text in catalogue(lang).items():
        tags = re.findall(r"<(/?)([a-zA-Z-]+)[^>]*>", text)
        stack: list[str] = []
        for closing, name in tags:
            assert name in ALLOWED_TAGS, (key, name)
            if closing:
                assert stack and stack[-1] == name, (key, text)
                stack.pop()
            else:
                stack.append(name)
        assert stack == [], (key, text)
        assert "&" not in re.sub(r"&(amp|lt|gt|quot);", "", text), key


def test_command_descriptions_fit_telegram_limits():
    for lang in LANGUAGES:
        for name in ("start", "menu", "help", "balance", "cancel"):
            assert 1 <= len(t(f"commands.{name}", lang)) <= 256


def test_fallback_to_russian_and_to_the_key():
    assert t("btn.menu", "de") == t("btn.menu", "ru")
    assert t("no.such.key", "en") == "no.such.key"
