"""An operator's grant or take of tokens tells the user (BalanceService.admin_adjust, notify=True by
default): once per ledger operation, after commit, in their language, through the `notify_adjustment`
task and the one Telegram sender (here: the Bot API emulator); a replayed idempotency key, a rolled
back transaction or notify=False tells nobody. And an operator's refund of a generation tells the user
(GenerationService.admin_refund -> notify_refund), at the service level."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.db import transaction

from botapp import tasks
from botapp.models import TgUser, Transaction, UserSettings
from botapp.services import notices
from botapp.services.balance import BalanceService
from botapp.services.generation import GenerationService
from sandbox.telegram import BotAPIEmulator

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def queued(monkeypatch) -> list[tuple]:
    """The notify_adjustment tasks queued ((args), options), instead of a broker."""
    sent: list[tuple] = []
    monkeypatch.setattr(tasks.notify_adjustment, "apply_async", lambda args, **options: sent.append((args, options)))
    return sent


def grant(user, amount, *, key: str, reason: str = "compensation for the outage (by alice)", **kw):
    return BalanceService.admin_adjust(user_id=user.pk, amount=D(amount), reason=reason, key=key, **kw)


# --- enqueued on commit, once per operation ---------------------------------------------------------------
def test_a_grant_enqueues_one_notice_keyed_by_the_ledger_row(
    make_user, queued, settings, django_capture_on_commit_callbacks
):
    user = make_user(balance=5)
    with django_capture_on_commit_callbacks(execute=True):
        result = grant(user, 10, key="admin:op-1:1")
        assert queued == [], "not before commit"
    row = Transaction.objects.get(operation_key="admin:op-1:1")
    assert result.transaction_ids == (row.pk,)
    assert queued == [((row.pk,), {"queue": settings.CELERY_SEND_QUEUE})]

    with django_capture_on_commit_callbacks(execute=True):
        assert grant(user, 10, key="admin:op-1:1").replayed  # the same form submitted again
    assert len(queued) == 1, "a replayed key changes nothing and says nothing"

    with django_capture_on_commit_callbacks(execute=True):
        grant(user, -3, key="admin:op-2:1")  # a take is told too
    assert len(queued) == 2


def test_notify_false_and_a_rollback_say_nothing(make_user, queued, django_capture_on_commit_callbacks):
    user = make_user()
    with django_capture_on_commit_callbacks(execute=True):
        grant(user, 10, key="tool:1", notify=False)
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        grant(user, 10, key="admin:rolled-back:1")
        raise RuntimeError("the admin action failed after the grant")
    assert callbacks == [] and queued == []


def test_test_funds_of_the_fixtures_say_nothing(make_user, queued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        make_user(balance=10, bonus=5)
    assert queued == []


def test_a_broken_broker_never_fails_the_grant(make_user, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(tasks.notify_adjustment, "apply_async", lambda *a, **k: (_ for _ in ()).throw(OSError("down")))
    user = make_user()
    with django_capture_on_commit_callbacks(execute=True):
        assert grant(user, 10, key="admin:broker-down:1").amount == D(10)


# --- the text --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("lang", "amount", "expected"),
    [
        ("en", "12.5", "🎁 You received <b>12.5</b> tokens: compensation for the outage\n"),
        ("en", "-2", "➖ <b>2</b> tokens were deducted from your balance: compensation for the outage\n"),
        ("ru", "12.5", "🎁 Вам начислено <b>12.5</b> ток.: compensation for the outage\n"),
        ("ru", "-2", "➖ С баланса списано <b>2</b> ток.: compensation for the outage\n"),
    ],
)
def test_the_text_says_how_much_and_why(make_user, lang, amount, expected):
    user = make_user(balance=5)
    result = grant(user, amount, key=f"admin:text:{lang}:{amount}", notify=False)
    text = notices.adjustment_notice_text(row=Transaction.objects.get(pk=result.transaction_ids[0]), lang=lang)
    assert text.startswith(expected), text
    assert "alice" not in text, "the operator's signature is the admin's, not the user's"
    assert str(result.total).rstrip("0").rstrip(".") in text.split("\n")[1]


def test_the_reason_is_escaped_and_keeps_its_own_parentheses(make_user):
    user = make_user()
    result = grant(user, 1, key="admin:html:1", reason="bug <b>#12</b> (the video) (by bob)", notify=False)
    text = notices.adjustment_notice_text(row=Transaction.objects.get(pk=result.transaction_ids[0]), lang="en")
    assert ": bug &lt;b&gt;#12&lt;/b&gt; (the video)\n" in text


# --- through Celery and the sender to the Bot API emulator ------------------------------------------------
@pytest.fixture
def emulator(settings) -> Iterator[BotAPIEmulator]:
    """The one sender pointed at the Bot API emulator; Celery tasks run inline."""
    from botapp.telegram.sender import close_sender
    from config.celery import app

    with BotAPIEmulator.run_in_thread(bot_username="genstudio_test_bot") as emu:
        settings.BOT_TOKEN = emu.token
        settings.TELEGRAM_API_URL = emu.base_url
        settings.TELEGRAM_GLOBAL_RATE = settings.TELEGRAM_CHAT_RATE = settings.TELEGRAM_AUX_RATE = 1000
        eager = app.conf.task_always_eager
        app.conf.task_always_eager = True
        try:
            yield emu
        finally:
            app.conf.task_always_eager = eager
            close_sender()


@pytest.mark.parametrize(
    ("language", "granted", "taken"),
    [
        ("en", "You received 7 tokens: a gift\n💰 Balance: 17 tokens.", "3 tokens were deducted from your balance"),
        ("ru", "Вам начислено 7 ток.: a gift\n💰 Баланс: 17 ток.", "С баланса списано 3 ток."),
    ],
)
def test_the_user_is_told_once_in_their_language(
    make_user, emulator, django_capture_on_commit_callbacks, language, granted, taken
):
    tg = emulator.user(first_name="Granted", language_code=language)
    user = make_user(balance=10, telegram_id=tg.id, language_code=language)
    UserSettings.objects.filter(user=user).update(language=language)

    with django_capture_on_commit_callbacks(execute=True):
        result = grant(user, 7, key="admin:e2e:1", reason="a gift (by alice)")
    texts = [m.get("text", "") for m in emulator.messages(tg.id)]
    assert len(texts) == 1 and granted in texts[0], texts

    with django_capture_on_commit_callbacks(execute=True):
        grant(user, 7, key="admin:e2e:1", reason="a gift (by alice)")  # replayed
    tasks.notify_adjustment.apply(args=(result.transaction_ids[0],))  # a duplicated task
    assert len(emulator.messages(tg.id)) == 1

    with django_capture_on_commit_callbacks(execute=True):
        grant(user, -3, key="admin:e2e:2", reason="a mistake (by alice)")
    texts = [m.get("text", "") for m in emulator.messages(tg.id)]
    assert len(texts) == 2 and taken in texts[1], texts


def test_a_user_who_blocked_the_bot_is_not_messaged(make_user, emulator, django_capture_on_commit_callbacks):
    tg = emulator.user(first_name="Gone")
    user = make_user(telegram_id=tg.id)
    TgUser.objects.filter(pk=user.pk).update(bot_blocked=True)
    with django_capture_on_commit_callbacks(execute=True):
        grant(user, 5, key="admin:blocked:1")
    assert emulator.messages(tg.id) == []


def test_an_operator_refund_of_a_generation_tells_the_user_once(
    make_user, nano, emulator, django_capture_on_commit_callbacks
):
    tg = emulator.user(first_name="Refunded", language_code="en")
    user = make_user(balance=10, telegram_id=tg.id, language_code="en")
    UserSettings.objects.filter(user=user).update(language="en")
    gen = GenerationService.create_request(user_id=user.pk, ai_model_id=nano.pk, prompt="a cat", chat_id=tg.id)

    with django_capture_on_commit_callbacks(execute=True):
        assert GenerationService.admin_refund(request_id=gen.pk, reason="support") is not None
    texts = [m.get("text", "") for m in emulator.messages(tg.id)]
    assert len(texts) == 1 and f"Generation #{gen.pk} was refunded by support" in texts[0], texts

    with django_capture_on_commit_callbacks(execute=True):
        GenerationService.admin_refund(request_id=gen.pk, reason="support")  # already refunded
    tasks.notify_refund.apply(args=(gen.pk,))  # a duplicated task
    assert len(emulator.messages(tg.id)) == 1
