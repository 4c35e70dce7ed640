"""botapp.services.notify: the queueing and the once-only send every unasked-for notice shares."""

from __future__ import annotations

import logging

import pytest
from django.core.cache import cache

from botapp import tasks
from botapp.models import TgUser, UserSettings
from botapp.services import notify
from botapp.telegram.sender import BotBlocked, OutcomeUnknown, RetryLater, SendRejected


class Stub:
    def __init__(self, *answers: Exception) -> None:
        self.answers = list(answers)
        self.sent: list[tuple[int, str, dict]] = []

    def send_message(self, chat_id: int, text: str, **kwargs):
        if self.answers:
            raise self.answers.pop(0)
        self.sent.append((chat_id, text, kwargs))


@pytest.fixture
def stub(monkeypatch) -> Stub:
    fake = Stub()
    monkeypatch.setattr(notify, "get_sender", lambda: fake)
    cache.clear()
    return fake


def test_enqueue_puts_the_task_on_the_send_queue(monkeypatch, settings):
    queued: list[tuple] = []
    monkeypatch.setattr(tasks.forward_support_request, "apply_async", lambda args, **o: queued.append((args, o)))
    settings.CELERY_SEND_QUEUE = "send"
    notify.enqueue("forward_support_request", 7, 501, what="x")
    settings.CELERY_SEND_QUEUE = ""
    notify.enqueue("forward_support_request", 8, 502, what="x")
    assert queued == [((7, 501), {"queue": "send"}), ((8, 502), {})]


def test_a_broken_broker_is_logged_not_raised(monkeypatch, caplog):
    monkeypatch.setattr(tasks.notify_refund, "apply_async", lambda *a, **k: (_ for _ in ()).throw(OSError("down")))
    with caplog.at_level(logging.ERROR, logger="botapp.services.notify"):
        notify.enqueue("notify_refund", 5, what="generation #5: the refund notice")
    assert any("generation #5: the refund notice" in r.getMessage() for r in caplog.records)


@pytest.mark.django_db
def test_language_of(make_user):
    user = make_user()
    UserSettings.objects.filter(user=user).update(language="en")
    assert notify.language_of(user.pk) == "en"
    UserSettings.objects.filter(user=user).delete()
    assert notify.language_of(user.pk, default="en") == "en"
    assert notify.language_of(user.pk) == "ru"


def test_sent_once_per_marker_with_its_ttl_and_markup(stub, monkeypatch):
    added: list[tuple] = []
    real_add = cache.add
    monkeypatch.setattr(cache, "add", lambda key, value, ttl: added.append((key, ttl)) or real_add(key, value, ttl))
    assert notify.send_once(chat_id=1, text="hi", marker="m1", what="x", ttl=60, reply_markup="kb") is None
    assert notify.send_once(chat_id=1, text="hi", marker="m1", what="x", ttl=60, reply_markup="kb") is None
    assert notify.send_once(chat_id=1, text="hello", marker="m2", what="x") is None
    assert stub.sent == [(1, "hi", {"reply_markup": "kb"}), (1, "hello", {})]
    assert added == [("m1", 60), ("m1", 60), ("m2", notify.MARKER_TTL)]


def test_flood_control_returns_the_delay_and_the_retry_sends(stub):
    stub.answers = [RetryLater("flood", retry_in=3.0)]
    assert notify.send_once(chat_id=1, text="hi", marker="m", what="x") == 3.0 and stub.sent == []
    assert notify.send_once(chat_id=1, text="hi", marker="m", what="x") is None and len(stub.sent) == 1


@pytest.mark.parametrize("error", [OutcomeUnknown("timeout"), SendRejected("400"), BotBlocked("403")])
def test_an_unknown_outcome_or_a_refusal_is_never_repeated(stub, error, caplog):
    stub.answers = [error]
    with caplog.at_level(logging.INFO, logger="botapp.services.notify"):
        assert notify.send_once(chat_id=1, text="hi", marker="m", what="the thing") is None
    assert notify.send_once(chat_id=1, text="hi", marker="m", what="the thing") is None and stub.sent == []
    assert any("the thing" in r.getMessage() for r in caplog.records)


@pytest.mark.django_db
def test_a_403_marks_the_user_only_when_asked(stub, make_user):
    one, two = make_user(), make_user()
    stub.answers = [BotBlocked("403"), BotBlocked("403")]
    notify.send_once(chat_id=one.telegram_id, text="hi", marker="a", what="x")
    notify.send_once(chat_id=two.telegram_id, text="hi", marker="b", what="x", mark_blocked=True)
    assert not TgUser.objects.get(pk=one.pk).bot_blocked and TgUser.objects.get(pk=two.pk).bot_blocked


def test_without_a_bot_token_nothing_is_marked(monkeypatch):
    monkeypatch.setattr(notify, "get_sender", lambda: None)
    cache.clear()
    assert notify.send_once(chat_id=1, text="hi", marker="m", what="x") is None
    assert cache.get("m") is None
