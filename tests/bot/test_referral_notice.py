"""A referrer hears about each reward: a referred friend pays twice through the emulator (Stars checkout)
and the referrer gets the first top-up's notice, then the percentage's, in the referrer's language, after
commit through Celery and the one sender; nothing with notifications off; a duplicated task tells once;
a referrer who blocked the bot is marked so."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from tests.bot.conftest import Chat, eventually, started, text_has, text_of
from tests.bot.test_payment import open_invoice
from tests.bot.workers import eager_workers

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def workers(emu, settings) -> Iterator:
    settings.REFERRAL_FIRST_TOPUP_BONUS, settings.REFERRAL_PERCENT = Decimal(10), Decimal(5)
    with eager_workers(emu, settings) as emulator:
        yield emulator


def invited(chat_factory) -> tuple[Chat, Chat]:
    """Ben (English) invites Anna (Russian); Ben is told she joined."""
    from botapp.models import TgUser

    ben = chat_factory(first_name="Ben", language_code="en")
    started(ben)
    code = TgUser.objects.get(telegram_id=ben.id).referral_code
    anna = chat_factory(first_name="Anna", language_code="ru")
    since = ben.mark()
    started(anna, f"ref_{code}")
    ben.wait(text_has("joined through your link"), since=since, edits=False)
    return ben, anna


def top_up(anna: Chat, package: str = "100 ток. — 400 ⭐") -> None:
    result = anna.user.pay(open_invoice(anna, package))
    assert result.ok, result.error_message
    anna.wait(text_has("Оплата прошла"), edits=False)


def test_the_referrer_hears_of_the_first_top_up_and_of_the_next(chat_factory, workers):
    from botapp import tasks
    from botapp.models import Transaction, UserBalance

    ben, anna = invited(chat_factory)
    since = ben.mark()
    top_up(anna)
    first = ben.wait(text_has("first top-up"), since=since, edits=False)
    assert text_of(first) == (
        "🎉 Anna, the friend you invited, has made their first top-up! You get +15 bonus tokens.\n"
        "💰 Balance: 15 tokens."
    )

    since = ben.mark()
    top_up(anna)
    later = ben.wait(text_has("topped up again"), since=since, edits=False)
    assert text_of(later) == (
        "💸 Anna, the friend you invited, has topped up again: you get +5 bonus tokens (5% of the top-up).\n"
        "💰 Balance: 20 tokens."
    )
    assert UserBalance.objects.get(user__telegram_id=ben.id).bonus_balance == Decimal(20)

    told = len(workers.messages(ben.id))
    for row in Transaction.objects.filter(user__telegram_id=ben.id, kind="referral"):
        tasks.notify_referral_reward.apply(args=(row.pk,))  # a duplicated / redelivered task
    assert len(workers.messages(ben.id)) == told


def test_in_russian_for_a_russian_referrer(chat_factory, workers):
    from botapp.models import UserSettings

    ben, anna = invited(chat_factory)
    UserSettings.objects.filter(user__telegram_id=ben.id).update(language="ru")
    since = ben.mark()
    top_up(anna)
    notice = ben.wait(text_has("Первое пополнение"), since=since, edits=False)
    assert "приглашённого вами друга Anna! Вам начислено +15 бонусных токенов." in text_of(notice)


def test_nothing_with_notifications_off(chat_factory, workers):
    from botapp.models import UserBalance, UserSettings

    ben, anna = invited(chat_factory)
    UserSettings.objects.filter(user__telegram_id=ben.id).update(notifications=False)
    since = ben.mark()
    top_up(anna)
    top_up(anna)
    assert ben.silence(0.5, since=since) == []
    assert UserBalance.objects.get(user__telegram_id=ben.id).bonus_balance == Decimal(20), "still rewarded"


def test_a_referrer_who_blocked_the_bot_is_marked(chat_factory, workers):
    from botapp.models import TgUser, UserBalance

    ben, anna = invited(chat_factory)
    workers.block_bot(ben.id, notify=False)  # no update: only the notice's 403 can tell
    top_up(anna)
    assert eventually(lambda: TgUser.objects.get(telegram_id=ben.id).bot_blocked)
    assert UserBalance.objects.get(user__telegram_id=ben.id).bonus_balance == Decimal(15)
