"""/admin in the bot: today's key numbers for the operators (ADMIN_IDS) with a refresh in place and a
link to the admin; for anyone else exactly what an unknown command gets, and a forged refresh press
shows nothing."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from botapp.callbacks import OpsAction, OpsCb
from sandbox.telegram import button_texts, inline_buttons
from tests.bot.conftest import started, text_has, text_of

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

_seq = itertools.count(1)
DEFAULT_ADMIN_URL = "http://127.0.0.1:8000/admin/"


@pytest.fixture(autouse=True)
def _ops_settings(settings):
    settings.STARS_RUB_RATE = Decimal("1.5")
    settings.ADMIN_URL = DEFAULT_ADMIN_URL


# --- data ---------------------------------------------------------------------------------------------
def person(name: str, *, days_ago: int = 0, seen_days_ago: int | None = 0):
    from botapp.models import TgUser

    now = timezone.now()
    row = TgUser.objects.create(telegram_id=8_100_000 + next(_seq), username=name, first_name=name)
    TgUser.objects.filter(pk=row.pk).update(
        created_at=now - timedelta(days=days_ago),
        last_seen_at=None if seen_days_ago is None else now - timedelta(days=seen_days_ago),
    )
    return row


def payment(who, *, amount: str, currency: str = "XTR", provider: str = "telegram_stars", days_ago: int = 0,
            status: str = "succeeded", tokens: str = "10"):  # fmt: skip
    from botapp.models import Payment

    paid = timezone.now() - timedelta(days=days_ago)
    return Payment.objects.create(
        user=who,
        provider=provider,
        status=status,
        amount=Decimal(amount),
        currency=currency,
        tokens=Decimal(tokens),
        invoice_payload=f"test-ops:{next(_seq)}",
        paid_at=paid if status == "succeeded" else None,
    )


def generation(who, *, status: str, days_ago: int = 0):
    from botapp.models import AIModel, GenRequest

    model = AIModel.objects.get(slug="nano-banana-2-1")
    now = timezone.now()
    row = GenRequest.objects.create(
        user=who,
        ai_model=model,
        model=model.slug,
        kind=model.kind,
        prompt="p",
        params={},
        status=status,
        price=model.price,
        finished_at=now if status in ("succeeded", "failed") else None,
    )
    GenRequest.objects.filter(pk=row.pk).update(created_at=now - timedelta(days=days_ago))
    return row


def ledger(who, kind: str, amount: str, *, bucket: str = "main"):
    """A ledger row written now (the ledger is append-only: rows are only ever inserted)."""
    from botapp.models import Transaction

    n = next(_seq)
    return Transaction.objects.create(
        user=who,
        kind=kind,
        bucket=bucket,
        amount=Decimal(amount),
        balance_after=Decimal("0"),
        operation_key=f"test-ops:{n}",
        idempotency_key=f"test-ops:{n}:{bucket}",
    )


def a_day_of_business():
    """Today: 2 new users (plus the operator, who signs up by writing /admin), 3 payments (2 in Stars,
    1 by card; a pending one and yesterday's do not count), tokens sold / spent / refunded, 5 requests
    (2 succeeded, 1 failed, 1 queued, 1 running) and yesterday's queued one still waiting."""
    buyer, maker = person("buyer"), person("maker")
    old = person("old", days_ago=10, seen_days_ago=3)
    payment(buyer, amount="100")
    payment(maker, amount="50")
    payment(buyer, amount="300", currency="RUB", provider="yookassa")
    payment(buyer, amount="70", status="pending")
    payment(old, amount="999", days_ago=1)
    ledger(buyer, "deposit", "30")
    ledger(maker, "deposit", "15")
    ledger(maker, "deposit", "5", bucket="bonus")
    ledger(maker, "charge", "-10")
    ledger(maker, "charge", "-4")
    ledger(maker, "refund", "4")
    for status in ("succeeded", "succeeded", "failed", "queued", "running"):
        generation(maker, status=status)
    generation(old, status="succeeded", days_ago=1)
    generation(old, status="queued", days_ago=1)


def operator(chat_factory, settings, language_code: str = "en"):
    chat = chat_factory("Olga", language_code=language_code)
    settings.ADMIN_IDS = [chat.id]
    return chat


def url_buttons(message) -> list[str]:
    return [b["url"] for b in inline_buttons(message) if b.get("url")]


# --- the operator -----------------------------------------------------------------------------------
def test_the_operator_gets_todays_numbers(chat_factory, settings):
    a_day_of_business()
    chat = operator(chat_factory, settings)
    card = chat.send("/admin", text_has("Today"))
    text = text_of(card)
    assert "👤 Users: 3 new, 3 active" in text
    assert "💳 Payments: 3 · ⭐ 150 Stars (2) · 300 ₽ by card (1) · ≈ 525 ₽ in all" in text
    assert "🪙 Tokens: 45 sold, 14 spent, 4 refunded" in text
    assert "🎨 Generations: 2 succeeded, 1 failed (of 5)" in text
    assert "⏳ Now: 3 in flight, 2 waiting in the queue" in text
    assert timezone.localdate().strftime("%d.%m.%Y") in text
    assert "🔄 Refresh" in button_texts(card)
    # The default ADMIN_URL is a loopback address, which Telegram refuses as a button: it is text.
    assert url_buttons(card) == []
    assert DEFAULT_ADMIN_URL in text


def test_refresh_edits_the_card_in_place_with_fresh_numbers(chat_factory, settings):
    from botapp.models import TgUser

    a_day_of_business()
    chat = operator(chat_factory, settings)
    card = chat.send("/admin", text_has("Today"))
    assert "💳 Payments: 3 ·" in text_of(card)
    payment(TgUser.objects.get(username="buyer"), amount="20")
    generation(TgUser.objects.get(username="maker"), status="failed")
    query = chat.user.press(card, "Refresh")
    fresh = chat.wait(text_has("💳 Payments: 4 ·"))
    assert fresh["message_id"] == card["message_id"]
    assert "⭐ 170 Stars (3)" in text_of(fresh)
    assert "🎨 Generations: 2 succeeded, 2 failed (of 6)" in text_of(fresh)
    assert "🔄 Refresh" in button_texts(fresh)
    answer = chat.emu.wait_for_callback_answer(chat.id, query_id=query["id"], since=0)
    assert answer["text"] == "Updated"
    assert len([m for m in chat.emu.messages(chat.id) if "Today" in text_of(m)]) == 1, "no second card"


def test_an_empty_day_shows_zeros(chat_factory, settings):
    from botapp.services.users import TelegramProfile, upsert_user

    chat = operator(chat_factory, settings, language_code="ru")
    user, _ = upsert_user(TelegramProfile(telegram_id=chat.id, username="olga", first_name="Olga", language_code="ru"))
    type(user).objects.filter(pk=user.pk).update(created_at=timezone.now() - timedelta(days=30))
    text = text_of(chat.send("/admin", text_has("Сегодня")))
    assert "👤 Пользователи: новых 0, активных 1" in text  # the operator, who just wrote
    assert "💳 Платежи: 0 · ⭐ 0 Stars (0) · 0 ₽ картой (0) · ≈ 0 ₽ всего" in text
    assert "🪙 Токены: продано 0, потрачено 0, возвращено 0" in text
    assert "🎨 Генерации: успешных 0, неудачных 0 (из 0)" in text
    assert "⏳ Сейчас: в работе 0, ждут в очереди 0" in text


def test_a_public_admin_url_is_a_button(chat_factory, settings):
    settings.ADMIN_URL = "https://ops.example.com/admin/"
    chat = operator(chat_factory, settings)
    card = chat.send("/admin", text_has("Today"))
    assert url_buttons(card) == ["https://ops.example.com/admin/"]
    assert "📈 Open the dashboard" in button_texts(card)
    assert "ops.example.com" not in text_of(card)


def test_admin_works_in_the_middle_of_a_flow_and_keeps_it(chat_factory, settings):
    chat = operator(chat_factory, settings)
    menu = started(chat)
    chat.press(menu, "Promocode", text_has("promocode"))
    assert "Today" in text_of(chat.send("/admin"))
    assert "WELCOME2025" in text_of(chat.send("WELCOME2025"))  # still waiting for the code


# --- anyone else ------------------------------------------------------------------------------------
def test_for_anyone_else_admin_is_an_unknown_command(chat_factory, settings):
    a_day_of_business()
    stranger = chat_factory("Stranger", language_code="en")
    settings.ADMIN_IDS = [stranger.id + 1]
    started(stranger)
    unknown = stranger.send("/whatever")
    admin = stranger.send("/admin")
    assert text_of(admin) == text_of(unknown)
    assert button_texts(admin) == button_texts(unknown)
    assert "Payments" not in text_of(admin) and "Today" not in text_of(admin)
    assert stranger.silence() == []


def test_admin_is_not_in_the_public_command_menu(emu, bot):
    from botapp.bot import set_commands

    bot.call(lambda: set_commands(bot.bot))
    for lang in ("ru", "en"):
        assert "admin" not in [c["command"] for c in emu.commands(language_code=lang)]


def test_a_forged_refresh_from_anyone_else_shows_nothing(chat_factory, settings):
    a_day_of_business()
    stranger = chat_factory("Stranger", language_code="en")
    settings.ADMIN_IDS = [stranger.id + 1]
    menu = started(stranger)
    since = stranger.mark()
    answer = stranger.press_expect_answer(menu, data=OpsCb(action=OpsAction.REFRESH).pack())
    assert answer["show_alert"] is True
    assert "outdated" in answer["text"]
    assert "Payments" not in answer["text"]
    assert stranger.silence(since=since) == []
    assert text_of(stranger.current(menu)) == text_of(menu)


def test_an_operator_removed_from_admin_ids_can_no_longer_refresh(chat_factory, settings):
    chat = operator(chat_factory, settings)
    card = chat.send("/admin", text_has("Today"))
    settings.ADMIN_IDS = []
    since = chat.mark()
    answer = chat.press_expect_answer(card, "Refresh")
    assert "outdated" in answer["text"]
    assert chat.silence(since=since) == []


# --- pieces -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "button"),
    [
        ("https://ops.example.com/admin/", True),
        ("http://admin.example.org:8000/admin/", True),
        ("http://203.0.113.7/admin/", True),
        ("http://127.0.0.1:8000/admin/", False),
        ("http://localhost:8000/admin/", False),
        ("http://app.localhost/admin/", False),
        ("http://[::1]:8000/admin/", False),
        ("http://0.0.0.0:8000/admin/", False),
        ("http://web:8000/admin/", False),
        ("ftp://ops.example.com/", False),
        ("", False),
    ],
)
def test_which_urls_telegram_takes_as_a_button(url, button):
    from botapp.handlers.ops import takes_as_button

    assert takes_as_button(url) is button


def test_the_numbers_of_an_empty_database_are_zeros():
    from botapp import bridge

    numbers = async_to_sync(bridge.ops_today)()
    assert numbers.day == timezone.localdate()
    assert (numbers.new_users, numbers.active_users, numbers.payments, numbers.generations) == (0, 0, 0, 0)
    assert numbers.stars == numbers.card_rub == numbers.revenue_rub == 0
    assert numbers.tokens_sold == numbers.tokens_spent == numbers.tokens_refunded == 0
    assert (numbers.succeeded, numbers.failed, numbers.in_flight, numbers.queue_depth) == (0, 0, 0, 0)
