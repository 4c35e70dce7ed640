"""Messaging a user from the admin, end to end: the user page's "Message the user" form (and the bulk
action) writes a SupportMessage row and, on commit, the Celery task `send_support_message` sends it
through the one Telegram sender to the Bot API emulator. Checked: the user receives it once, the row
says what happened (sent / blocked / failed), bad HTML and operators without the permission are
refused."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from botapp import tasks
from botapp.models import SupportMessage, TgUser
from botapp.services import support
from botapp.telegram.sender import RetryLater
from sandbox.telegram import BotAPIEmulator
from tests.admin.test_admin import messages_of, post_action, url

pytestmark = pytest.mark.django_db


@pytest.fixture
def emulator(settings) -> Iterator[BotAPIEmulator]:
    """The one sender pointed at the Bot API emulator; Celery tasks run inline."""
    from botapp.telegram.sender import close_sender
    from config.celery import app

    with BotAPIEmulator.run_in_thread(bot_username="genstudio_test_bot") as emu:
        settings.BOT_TOKEN = emu.token
        settings.TELEGRAM_API_URL = emu.base_url
        settings.TELEGRAM_GLOBAL_RATE = settings.TELEGRAM_CHAT_RATE = settings.TELEGRAM_AUX_RATE = 1000
        settings.SUPPORT_USERNAME = ""
        eager = app.conf.task_always_eager
        app.conf.task_always_eager = True
        try:
            yield emu
        finally:
            app.conf.task_always_eager = eager
            close_sender()


@pytest.fixture
def person(emulator, make_user):
    tg = emulator.user(first_name="Dana", language_code="en")
    return tg, make_user(telegram_id=tg.id, language_code="en", username="dana")


def message_url(user: TgUser) -> str:
    return reverse("admin:botapp_tguser_message_detail", args=(user.pk,))


def write(client, user: TgUser, text: str, capture, operation_id: str | None = None):
    data = {"text": text, "operation_id": operation_id or str(uuid.uuid4()), "apply": "1"}
    with capture(execute=True):
        return client.post(message_url(user), data)


def texts(emulator: BotAPIEmulator, chat_id: int) -> list[str]:
    return [m.get("text", "") for m in emulator.messages(chat_id)]


# --- end to end -------------------------------------------------------------------------------------------
def test_the_user_receives_the_message_and_the_row_says_sent(
    admin_client, admin_user, emulator, person, django_capture_on_commit_callbacks
):
    tg, user = person
    page = admin_client.get(url(TgUser, "change", user.pk))
    assert message_url(user) in page.content.decode(), "the user page has the button"
    form = admin_client.get(message_url(user))
    assert form.status_code == 200 and 'name="text"' in form.content.decode()

    response = write(admin_client, user, "Hello <b>Dana</b>, your refund is done.", django_capture_on_commit_callbacks)
    assert response.status_code == 302 and response["Location"] == url(TgUser, "change", user.pk)

    received = texts(emulator, tg.id)
    assert len(received) == 1, received
    assert received[0].startswith("💬 A message from support")
    assert "Hello Dana, your refund is done." in received[0]
    row = SupportMessage.objects.get(user=user)
    assert row.status == SupportMessage.Status.SENT
    assert row.text == "Hello <b>Dana</b>, your refund is done."
    assert row.operator == admin_user and row.operator_name == admin_user.get_username()
    assert row.message_id == emulator.messages(tg.id)[0]["message_id"] and row.sent_at is not None

    # a duplicated or redelivered task, and the same form submitted again, send nothing more
    tasks.send_support_message.apply(args=(row.pk,))
    again = write(admin_client, user, "Hello <b>Dana</b>, your refund is done.", django_capture_on_commit_callbacks)
    assert again.status_code == 302
    assert len(texts(emulator, tg.id)) == 2, "a new form is a new message"
    operation = str(uuid.uuid4())
    write(admin_client, user, "Once", django_capture_on_commit_callbacks, operation_id=operation)
    write(admin_client, user, "Once", django_capture_on_commit_callbacks, operation_id=operation)
    assert len(texts(emulator, tg.id)) == 3, "a form submitted twice sends once"
    assert SupportMessage.objects.filter(user=user, text="Once").count() == 1

    # the log shows on the user page's timeline
    html = admin_client.get(url(TgUser, "change", user.pk)).content.decode()
    assert url(SupportMessage, "change", row.pk) in html and "Sent" in html
    assert "Hello Dana, your refund is done." in html, "the text as the user reads it"


def test_the_message_is_framed_in_the_users_language_with_the_reply_hint(
    admin_client, emulator, make_user, settings, django_capture_on_commit_callbacks
):
    settings.SUPPORT_USERNAME = "genstudio_help"
    tg = emulator.user(first_name="Иван", language_code="ru")
    user = make_user(telegram_id=tg.id, language_code="ru")
    write(admin_client, user, "Проверьте баланс", django_capture_on_commit_callbacks)
    (text,) = texts(emulator, tg.id)
    assert text.startswith("💬 Сообщение от поддержки") and "Проверьте баланс" in text
    assert text.endswith("Чтобы ответить, напишите @genstudio_help.")


def test_a_user_who_blocked_the_bot(admin_client, emulator, person, django_capture_on_commit_callbacks):
    tg, user = person
    tg.block_bot()
    response = write(admin_client, user, "Are you there?", django_capture_on_commit_callbacks)
    assert response.status_code == 302
    row = SupportMessage.objects.get(user=user)
    assert row.status == SupportMessage.Status.BLOCKED
    assert "blocked" in row.error.lower() and row.sent_at is None
    user.refresh_from_db()
    assert user.bot_blocked
    assert texts(emulator, tg.id) == []


def test_telegram_refusing_the_message_marks_it_failed_with_the_reason(
    admin_client, emulator, person, django_capture_on_commit_callbacks
):
    tg, user = person
    emulator.fail_next("sendMessage", 400, description="Bad Request: chat not found", chat_id=tg.id)
    write(admin_client, user, "Hi", django_capture_on_commit_callbacks)
    row = SupportMessage.objects.get(user=user)
    assert row.status == SupportMessage.Status.FAILED
    assert "chat not found" in row.error
    assert emulator.token not in row.error


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("<b>unclosed", "never closed"),
        ("<div>hi</div>", "unsupported tag <div>"),
        ("1 < 2", "a bare '<'"),
        ("   ", "required"),
        ("x" * 4096, "Telegram allows"),
    ],
)
def test_bad_html_is_refused_with_the_reason(admin_client, person, django_capture_on_commit_callbacks, text, reason):
    _, user = person
    response = write(admin_client, user, text, django_capture_on_commit_callbacks)
    assert response.status_code == 200, "the form again"
    errors = " ".join(str(e) for e in response.context["form"].errors.get("text", []))
    assert reason in errors or reason in response.content.decode(), errors
    assert not SupportMessage.objects.exists()


def test_without_the_permission_nothing_is_sent(client, person, django_user_model, django_capture_on_commit_callbacks):
    _, user = person
    staff = django_user_model.objects.create_user("clerk", password="x", is_staff=True)
    for codename in ("view_tguser", "change_tguser", "view_supportmessage"):
        staff.user_permissions.add(Permission.objects.get(codename=codename))
    client.force_login(staff)
    page = client.get(url(TgUser, "change", user.pk)).content.decode()
    assert message_url(user) not in page, "no button"
    assert client.get(message_url(user)).status_code == 403
    assert write(client, user, "Hi", django_capture_on_commit_callbacks).status_code == 403
    response = post_action(client, TgUser, "message_selected", [user.pk], text="Hi", apply="1")
    assert response.status_code in (200, 302)
    assert not SupportMessage.objects.exists()

    staff.user_permissions.add(Permission.objects.get(codename="add_supportmessage"))
    client.force_login(django_user_model.objects.get(pk=staff.pk))
    assert client.get(message_url(user)).status_code == 200


def test_a_non_staff_user_is_sent_to_the_login(client, person, django_user_model):
    _, user = person
    member = django_user_model.objects.create_user("member", password="x", is_staff=False)
    member.user_permissions.add(Permission.objects.get(codename="add_supportmessage"))
    client.force_login(member)
    response = client.get(message_url(user))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_message_selected_users(admin_client, emulator, make_user, django_capture_on_commit_callbacks):
    people = [emulator.user(first_name=f"U{i}", language_code="en") for i in range(2)]
    users = [make_user(telegram_id=tg.id, language_code="en") for tg in people]
    ids = [u.pk for u in users]
    form = post_action(admin_client, TgUser, "message_selected", ids)
    assert form.status_code == 200 and 'name="text"' in form.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = post_action(
            admin_client,
            TgUser,
            "message_selected",
            ids,
            follow=True,
            text="New models are in",
            operation_id=str(uuid.uuid4()),
            apply="1",
        )
    assert any("queued" in m for m in messages_of(response))
    for tg in people:
        assert len(texts(emulator, tg.id)) == 1
    assert set(SupportMessage.objects.values_list("status", flat=True)) == {SupportMessage.Status.SENT}


def test_at_most_fifty_users_at_once(admin_client, make_user):
    ids = [make_user().pk for _ in range(support.MAX_RECIPIENTS + 1)]
    response = post_action(admin_client, TgUser, "message_selected", ids, follow=True)
    assert any("at most 50" in m for m in messages_of(response))
    with pytest.raises(support.SupportError):
        support.queue_messages(user_ids=ids, text="hi")


def test_the_log_is_read_only(admin_client, person):
    _, user = person
    row = SupportMessage.objects.create(user=user, text="x")
    assert admin_client.get(url(SupportMessage, "changelist")).status_code == 200
    assert admin_client.get(url(SupportMessage, "change", row.pk)).status_code == 200
    assert admin_client.get(url(SupportMessage, "add")).status_code == 403
    assert admin_client.post(url(SupportMessage, "delete", row.pk), {"post": "yes"}).status_code == 403


# --- the task's guarantees, with a sender double -------------------------------------------------------------
class FakeSender:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.sent: list[tuple[int, str]] = []

    def send_message(self, chat_id: int, text: str, **kwargs):
        if self.error is not None:
            raise self.error
        self.sent.append((chat_id, text))
        from botapp.telegram.sender import SentMessage

        return SentMessage(chat_id, 77)


def test_flood_control_puts_it_back_and_the_retry_sends_it(monkeypatch, make_user):
    user = make_user()
    (row,) = support.queue_messages(user_ids=[user.pk], text="hi").created
    waiting = FakeSender(RetryLater("flood", 12.0))
    monkeypatch.setattr(support, "get_sender", lambda: waiting)
    assert support.send(message_id=row.pk) == 12.0
    row.refresh_from_db()
    assert row.status == SupportMessage.Status.PENDING and "flood" in row.error

    ok = FakeSender()
    monkeypatch.setattr(support, "get_sender", lambda: ok)
    assert support.send(message_id=row.pk) is None
    assert support.send(message_id=row.pk) is None
    assert len(ok.sent) == 1
    row.refresh_from_db()
    assert (row.status, row.message_id, row.error) == (SupportMessage.Status.SENT, 77, "")


def test_the_task_gives_up_after_its_retries(monkeypatch, make_user):
    user = make_user()
    (row,) = support.queue_messages(user_ids=[user.pk], text="hi").created
    monkeypatch.setattr(support, "get_sender", lambda: FakeSender(RetryLater("flood", 1.0)))
    tasks.send_support_message.apply(args=(row.pk,), retries=tasks.send_support_message.max_retries)
    row.refresh_from_db()
    assert row.status == SupportMessage.Status.FAILED and "flood" in row.error.lower()


def test_a_claimed_row_is_never_sent_again(monkeypatch, make_user):
    from datetime import timedelta

    from django.utils import timezone

    user = make_user()
    (row,) = support.queue_messages(user_ids=[user.pk], text="hi").created
    sender = FakeSender()
    monkeypatch.setattr(support, "get_sender", lambda: sender)
    SupportMessage.objects.filter(pk=row.pk).update(status=SupportMessage.Status.SENDING, claimed_at=timezone.now())
    assert support.send(message_id=row.pk) is None
    row.refresh_from_db()
    assert row.status == SupportMessage.Status.SENDING, "another worker is sending it now"
    SupportMessage.objects.filter(pk=row.pk).update(claimed_at=timezone.now() - timedelta(hours=1))
    support.send(message_id=row.pk)
    row.refresh_from_db()
    assert row.status == SupportMessage.Status.UNKNOWN, "its worker died mid-send: it may have arrived"
    assert sender.sent == []


def test_without_a_bot_token_it_fails_plainly(settings, make_user):
    settings.BOT_TOKEN = ""
    user = make_user()
    (row,) = support.queue_messages(user_ids=[user.pk], text="hi").created
    support.send(message_id=row.pk)
    row.refresh_from_db()
    assert row.status == SupportMessage.Status.FAILED and "BOT_TOKEN" in row.error


def test_the_task_is_routed_to_the_send_queue(settings):
    assert settings.CELERY_TASK_ROUTES["botapp.tasks.send_support_message"] == {"queue": settings.CELERY_SEND_QUEUE}


def test_a_duplicate_task_running_meanwhile_does_not_send_it_again(monkeypatch, make_user):
    """The conditional claim is what stops a second task that read the row as pending too: here the
    duplicate runs between the first task's read and its claim, and sends; the first then finds the
    row taken and sends nothing."""
    user = make_user()
    (row,) = support.queue_messages(user_ids=[user.pk], text="hi").created
    sender = FakeSender()
    monkeypatch.setattr(support, "get_sender", lambda: sender)
    compose, raced = support.compose, []

    def compose_then_race(**kwargs):
        if not raced:
            raced.append("started")
            raced.append(support.send(message_id=row.pk))  # the duplicate, after our read
        return compose(**kwargs)

    monkeypatch.setattr(support, "compose", compose_then_race)
    assert support.send(message_id=row.pk) is None
    assert len(sender.sent) == 1 and raced == ["started", None]
    row.refresh_from_db()
    assert row.status == SupportMessage.Status.SENT
