"""/terms through the emulator: the terms of service in the user's language, also in the middle of a flow
(which is kept), read through the one access point `botapp.selectors.texts.bot_text` (the operator's
version from BotText, else the catalogue's default); /help and /paysupport link to it."""

from __future__ import annotations

import pytest

from tests.bot.conftest import started, text_has, text_of

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_terms_in_the_users_language(chat_factory):
    anna = chat_factory(first_name="Anna", language_code="ru")
    started(anna)
    terms = anna.send("/terms", text_has("Условия использования"))
    assert text_of(terms).startswith("📄 Условия использования")
    assert "звёзды Telegram" in text_of(terms) and "/paysupport" in text_of(terms)

    ben = chat_factory(first_name="Ben", language_code="en")
    started(ben)
    terms = ben.send("/terms", text_has("Terms of service"))
    assert "Telegram Stars" in text_of(terms) and "/paysupport" in text_of(terms)
    menu = ben.press(terms, "Menu", text_has("Main menu"))
    assert menu["message_id"] == terms["message_id"]


def test_terms_keep_the_flow_in_progress(chat):
    menu = started(chat)
    chat.press(menu, "Промокод", text_has("Пришлите промокод"))
    chat.send("/terms", text_has("Условия использования"))
    chat.send("NOSUCHCODE", text_has("Такого промокода нет"))  # still the promocode flow


def test_the_text_comes_from_the_selector(chat, monkeypatch):
    from botapp.selectors import texts

    asked: list[tuple[str, str]] = []

    def edited(*, key: str, lang: str | None) -> str:
        asked.append((key, lang))
        return "📄 <b>Our terms</b>, as the operator wrote them."

    monkeypatch.setattr(texts, "bot_text", edited)
    started(chat)
    shown = chat.send("/terms", text_has("as the operator wrote them"))
    assert text_of(shown) == "📄 Our terms, as the operator wrote them."
    assert asked == [("terms", "ru")]


def test_the_terms_an_operator_edited(chat):
    from botapp.models import BotText

    BotText.objects.create(key="terms", text_ru="📄 <b>Условия</b> от оператора, версия 2.", text_en="")
    started(chat)
    shown = chat.send("/terms", text_has("от оператора"))
    assert text_of(shown) == "📄 Условия от оператора, версия 2."


def test_help_and_paysupport_link_to_the_terms(chat_factory):
    chat = chat_factory(first_name="Ben", language_code="en")
    started(chat)
    help_text = text_of(chat.send("/help", text_has("How it works")))
    assert "📄 Terms of service: /terms" in help_text and "/paysupport" in help_text
    support = text_of(chat.send("/paysupport", text_has("Help with payments")))
    assert "📄 Terms of service: /terms" in support
