"""The bot's texts an operator may edit in the admin (`BotText`): the terms of service (/terms) and the
introduction of payment support (/paysupport).

`bot_text(key=..., lang=...)` is the one way the bot reads them: the operator's version in `lang` when
there is one (and Telegram would take it), else the catalogue's default, `texts.<key>` in
botapp/locales (support_bot.toml). An operator's text that is not valid Telegram HTML or is longer than
`TEXT_LIMITS[key]` visible characters is skipped (with a warning in the log) rather than breaking the
command: the admin is expected to refuse it when it is saved (`check_bot_text`).
"""

from __future__ import annotations

import logging

from botapp.i18n import normalize_language, t
from botapp.models import BotText
from botapp.telegram.html import MESSAGE_LIMIT, HtmlError, check_html

log = logging.getLogger(__name__)

# Visible characters an operator's text may have: the terms are a message of their own; the support
# introduction shares its message with the payment list, the contact and the question.
TEXT_LIMITS = {BotText.Key.TERMS: MESSAGE_LIMIT, BotText.Key.PAYSUPPORT: 1000}


def check_bot_text(*, key: str, text: str) -> None:
    """Raise HtmlError (with the reason) unless Telegram takes `text` as the text `key`."""
    check_html(text, limit=TEXT_LIMITS[key])


def bot_text(*, key: str, lang: str | None) -> str:
    """The text `key` (a BotText.Key) in `lang` (the default language for an unknown one)."""
    if key not in TEXT_LIMITS:
        raise KeyError(f"unknown bot text: {key!r}")
    lang = normalize_language(lang)
    row = BotText.objects.filter(key=key).values_list("text_ru", "text_en").first()
    custom = ((row[1] if lang == "en" else row[0]) or "").strip() if row else ""
    if custom:
        try:
            check_bot_text(key=key, text=custom)
        except HtmlError as exc:
            log.warning("the operator's %s text (%s) is not used: %s", key, lang, exc)
        else:
            return custom
    return t(f"texts.{key}", lang)
