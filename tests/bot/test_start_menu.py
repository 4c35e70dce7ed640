"""/start (plain, with a referral, with a promocode), the main menu, navigation in place, commands."""

from __future__ import annotations

import pytest

from sandbox.telegram import button_texts
from tests.bot.conftest import eventually, started, text_has, text_of

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_start_registers_the_user_and_shows_the_menu(chat):
    from botapp.models import TgUser

    menu = started(chat)
    assert "Привет, Anna" in text_of(menu)
    assert button_texts(menu) == [
        "🖼 Создать изображение",
        "🎬 Создать видео",
        "💰 Баланс",
        "👤 Профиль",
        "⚙️ Настройки",
        "🎁 Промокод",
        "👥 Пригласить друзей",
        "❓ Помощь",
    ]
    user = TgUser.objects.select_related("settings", "balance").get(telegram_id=chat.id)
    assert user.settings.language == "ru"
    assert user.balance.balance == 0
    assert user.last_seen_at is not None
    assert "С возвращением" in text_of(started(chat))


def test_english_client_gets_english(chat_factory):
    chat = chat_factory("John", language_code="en")
    menu = started(chat)
    assert "Hi, John" in text_of(menu)
    assert "🖼 Create image" in button_texts(menu)


def test_start_with_a_referral_link(chat_factory):
    from botapp.models import TgUser

    friend = chat_factory("Friend")
    started(friend)
    code = TgUser.objects.get(telegram_id=friend.id).referral_code
    newcomer = chat_factory("Newcomer", language_code="en")
    since = friend.mark()
    menu = started(newcomer, f"ref_{code}")
    assert "invitation from Friend" in text_of(menu)
    assert TgUser.objects.get(telegram_id=newcomer.id).referred_by.telegram_id == friend.id
    note = friend.wait(text_has("Newcomer"), since=since, edits=False)
    assert "присоединился" in text_of(note)


def test_referral_link_for_an_existing_user_or_oneself(chat_factory):
    from botapp.models import TgUser

    friend, existing = chat_factory("Friend"), chat_factory("Existing")
    started(friend)
    started(existing)
    code = TgUser.objects.get(telegram_id=friend.id).referral_code
    menu = started(existing, f"ref_{code}")
    assert "только для новых" in text_of(menu)
    assert TgUser.objects.get(telegram_id=existing.id).referred_by is None
    own = chat_factory("Self")
    own_code = "ZZZZZZZZ"
    menu = started(own, f"ref_{own_code}")
    assert "нельзя применить" in text_of(menu)
    assert "Главное меню" in text_of(menu)


def test_start_with_a_promocode(chat):
    from botapp.models import UserBalance

    menu = started(chat, "promo_welcome2025")
    assert "Промокод WELCOME2025 активирован: +10 бонусных токенов" in text_of(menu)
    assert "Баланс: 10 токенов" in text_of(menu)  # read after the promo, not the snapshot of the update's start
    assert UserBalance.objects.get(user__telegram_id=chat.id).bonus_balance == 10
    again = started(chat, "promo_WELCOME2025")
    assert "уже использовали" in text_of(again)


def test_menu_screens_edit_in_place(chat):
    menu = started(chat)
    for button, marker in [
        ("Баланс", "Баланс:"),
        ("Назад", "Главное меню"),
        ("Профиль", "Уровень"),
        ("Назад", "Главное меню"),
        ("Настройки", "Настройки"),
        ("Назад", "Главное меню"),
        ("Пригласить друзей", "Ваша ссылка"),
        ("Назад", "Главное меню"),
        ("Помощь", "Как это работает"),
        ("Назад", "Главное меню"),
    ]:
        screen = chat.press(menu, button, text_has(marker))
        assert screen["message_id"] == menu["message_id"]
        menu = screen
    assert len(chat.emu.messages(chat.id)) == 1, "navigation never floods the chat"


def test_commands(chat):
    started(chat)
    assert "Главное меню" in text_of(chat.send("/menu"))
    assert "Как это работает" in text_of(chat.send("/help"))
    assert "Nano Banana" in text_of(chat.send("/help"))
    assert "Баланс: 0" in text_of(chat.send("/balance"))
    assert "Нечего отменять" in text_of(chat.send("/cancel"))
    assert "Не знаю такой команды" in text_of(chat.send("/whatever"))


def test_command_menus_in_both_languages(emu, bot):
    from botapp.bot import set_commands

    bot.call(lambda: set_commands(bot.bot))
    ru = [c["command"] for c in emu.commands(language_code="ru")]
    en = {c["command"]: c["description"] for c in emu.commands(language_code="en")}
    assert ru == ["start", "menu", "help", "balance", "paysupport", "terms", "cancel"]
    assert en["balance"] == "Balance and top-up"
    assert (en["paysupport"], en["terms"]) == ("Help with payments", "Terms of service")
    assert [c["command"] for c in emu.commands()] == ru


def test_last_seen_is_refreshed_without_a_write_per_click(chat):
    from botapp.models import TgUser

    menu = started(chat)
    seen = TgUser.objects.get(telegram_id=chat.id).last_seen_at
    chat.press(menu, "Профиль", text_has("Уровень"))
    assert eventually(lambda: TgUser.objects.get(telegram_id=chat.id).last_seen_at == seen)
