"""An operator's refund of a generation tells the user, once, in their language: the admin's refund
action enqueues `notify_refund` on commit (only for the call that refunded), and the task sends the
notice through the one Telegram sender (here: to the Bot API emulator)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from botapp import tasks
from botapp.models import GenRequest
from botapp.services.generation import GenerationService
from sandbox.telegram import BotAPIEmulator
from tests.admin.test_admin import messages_of, post_action

pytestmark = pytest.mark.django_db


def refund_in_admin(admin_client, gen: GenRequest, capture) -> list[str]:
    with capture(execute=True):
        response = post_action(admin_client, GenRequest, "refund", [gen.pk], index="0", follow=True)
    return messages_of(response)


def test_the_refund_action_enqueues_one_notice_per_refund(
    admin_client, make_user, nano, settings, monkeypatch, django_capture_on_commit_callbacks
):
    queued: list[tuple] = []
    monkeypatch.setattr(tasks.notify_refund, "apply_async", lambda args, **options: queued.append((args, options)))
    user = make_user(balance=10)
    gen = GenerationService.create_request(user_id=user.pk, ai_model_id=nano.pk, prompt="a cat")
    GenerationService.mark_running(request_id=gen.pk)
    GenerationService.mark_succeeded(request_id=gen.pk, results=[{"kind": "image"}])  # undelivered

    capture = django_capture_on_commit_callbacks
    assert any(m.startswith("Refunded #") for m in refund_in_admin(admin_client, gen, capture))
    assert queued == [((gen.pk,), {"queue": settings.CELERY_SEND_QUEUE})]
    assert any("Already refunded" in m for m in refund_in_admin(admin_client, gen, capture))
    assert len(queued) == 1, "a repeated refund changes nothing and says nothing"

    # A refund the system makes by itself (a failed generation) is explained by the worker instead.
    failed = GenerationService.create_request(user_id=user.pk, ai_model_id=nano.pk, prompt="a dog")
    with capture(execute=True):
        GenerationService.mark_running(request_id=failed.pk)
        GenerationService.fail(request_id=failed.pk, error_code="provider_error")
    refund_in_admin(admin_client, failed, capture)
    assert len(queued) == 1


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
    ("language", "expected"),
    [
        ("en", "Generation #{n} was refunded by support: <b>1.5</b> tokens are back on your balance."),
        ("ru", "Генерация #{n} возвращена оператором: <b>1.5</b> ток. вернулись на баланс."),
    ],
)
def test_the_user_gets_the_notice_in_their_language_once(
    admin_client, make_user, nano, emulator, django_capture_on_commit_callbacks, language, expected
):
    tg = emulator.user(first_name="Refunded", language_code=language)
    user = make_user(balance=10, telegram_id=tg.id, language_code=language)
    gen = GenerationService.create_request(user_id=user.pk, ai_model_id=nano.pk, prompt="a cat", chat_id=tg.id)

    refund_in_admin(admin_client, gen, django_capture_on_commit_callbacks)

    texts = [m.get("text", "") for m in emulator.messages(tg.id)]
    assert len(texts) == 1, texts
    assert expected.format(n=gen.pk).replace("<b>", "").replace("</b>", "") in texts[0]
    assert ("Balance: 10 tokens" if language == "en" else "Баланс: 10 ток.") in texts[0]

    refund_in_admin(admin_client, gen, django_capture_on_commit_callbacks)  # already refunded
    tasks.notify_refund.apply(args=(gen.pk,))  # a duplicated task
    assert len(emulator.messages(tg.id)) == 1
