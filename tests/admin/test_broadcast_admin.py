"""The Broadcast admin through Django's test client: composing is checked as Telegram would check
it, the recipient count and the paid cost are shown before starting, starting needs the
send_broadcast permission and a confirmation (POST), it cannot be started twice, and the live
progress endpoint answers JSON."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from botapp.models import Broadcast, BroadcastRecipient
from botapp.services import broadcasts as service

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_dispatch(monkeypatch):
    dispatched: list[int] = []
    monkeypatch.setattr(service, "_dispatch", lambda broadcast_id, countdown=None: dispatched.append(broadcast_id))
    return dispatched


def url(view: str, *args) -> str:
    return reverse(f"admin:botapp_broadcast_{view}", args=args)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def form_data(**overrides) -> dict:
    data = {
        "text": "Hello",
        "button_text": "",
        "button_url": "",
        "button_screen": "",
        "paid": "",
        "language": "",
        "active_within_days": "",
        "level_min": "",
        "level_max": "",
        "joined_after_0": "",
        "joined_after_1": "",
        "joined_before_0": "",
        "joined_before_1": "",
        "send_at_0": "",
        "send_at_1": "",
    }
    data.update(overrides)
    return data


def test_compose_refuses_invalid_html_with_the_reason(admin_client):
    response = admin_client.post(url("add"), form_data(text="Hi <div>there</div>"))
    assert response.status_code == 200
    assert "unsupported tag &lt;div&gt;" in response.content.decode()
    assert not Broadcast.objects.exists()
    response = admin_client.post(url("add"), form_data(text="Hi", button_text="Open"))
    assert "opens nothing" in response.content.decode()
    response = admin_client.post(url("add"), form_data(text="<b>Hi</b>", button_screen="top", language="en"))
    assert response.status_code == 302
    broadcast = Broadcast.objects.get()
    assert (broadcast.text, broadcast.button_screen, broadcast.language, broadcast.status) == (
        "<b>Hi</b>", "top", "en", "draft",
    )  # fmt: skip


def test_change_page_shows_the_recipient_count_and_the_paid_cost(admin_client, make_user):
    for _ in range(3):
        make_user(language_code="en")
    make_user(language_code="en", bot_blocked=True)
    make_user(language_code="ru")
    broadcast = Broadcast.objects.create(text="Hello", language="en", allow_paid_broadcast=True)
    page = admin_client.get(url("change", broadcast.pk)).content.decode()
    assert "3 users now; paid broadcast: 0.3 Stars" in page
    confirm = admin_client.get(url("start", broadcast.pk)).content.decode()
    assert "Recipients now: 3." in confirm and "about 0.3 Stars" in confirm
    assert Broadcast.objects.get(pk=broadcast.pk).status == "draft"  # a GET starts nothing


def test_start_needs_the_permission_and_happens_once(client, django_user_model, make_user, no_dispatch):
    make_user()
    broadcast = Broadcast.objects.create(text="Hello")
    staff = django_user_model.objects.create_user("editor", password="x", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_broadcast", "change_broadcast"]))
    client.force_login(staff)
    assert client.get(url("change", broadcast.pk)).status_code == 200
    for view in ("start", "preview", "pause", "cancel"):
        assert client.post(url(view, broadcast.pk)).status_code == 403, view
    assert Broadcast.objects.get(pk=broadcast.pk).status == "draft" and no_dispatch == []

    staff.user_permissions.add(Permission.objects.get(codename="send_broadcast"))
    client.force_login(django_user_model.objects.get(pk=staff.pk))
    response = client.post(url("start", broadcast.pk), follow=True)
    assert f"Broadcast #{broadcast.pk} is being sent." in messages_of(response)
    assert Broadcast.objects.get(pk=broadcast.pk).status == "sending" and no_dispatch == [broadcast.pk]
    response = client.post(url("start", broadcast.pk), follow=True)
    assert any("not a draft" in m for m in messages_of(response))
    assert no_dispatch == [broadcast.pk]
    # Started: the message and the audience cannot be edited any more.
    client.post(url("change", broadcast.pk), form_data(text="Changed"))
    assert Broadcast.objects.get(pk=broadcast.pk).text == "Hello"


def test_an_empty_audience_is_refused_in_the_admin(admin_client, make_user):
    make_user(bot_blocked=True)
    broadcast = Broadcast.objects.create(text="Hello")
    response = admin_client.post(url("start", broadcast.pk), follow=True)
    assert any("audience is empty" in m for m in messages_of(response))
    assert Broadcast.objects.get(pk=broadcast.pk).status == "draft"


def test_preview_without_admin_ids_says_so(admin_client, settings):
    settings.ADMIN_IDS = []
    broadcast = Broadcast.objects.create(text="Hello")
    response = admin_client.post(url("preview", broadcast.pk), follow=True)
    assert any("ADMIN_IDS is empty" in m for m in messages_of(response))


def test_pause_resume_cancel_buttons(admin_client, make_user, no_dispatch):
    make_user()
    broadcast = Broadcast.objects.create(text="Hello")
    admin_client.post(url("start", broadcast.pk))
    admin_client.post(url("pause", broadcast.pk))
    assert Broadcast.objects.get(pk=broadcast.pk).status == "paused"
    admin_client.post(url("resume", broadcast.pk))
    assert Broadcast.objects.get(pk=broadcast.pk).status == "sending"
    admin_client.post(url("cancel", broadcast.pk))
    assert Broadcast.objects.get(pk=broadcast.pk).status == "cancelled"
    response = admin_client.post(url("pause", broadcast.pk), follow=True)
    assert any("nothing to pause" in m for m in messages_of(response))


def test_progress_endpoint(admin_client, make_user):
    users = [make_user() for _ in range(4)]
    broadcast = Broadcast.objects.create(text="Hello", status="sending", prepared=True)
    for user, status in zip(users, ["sent", "sent", "blocked", "pending"], strict=True):
        BroadcastRecipient.objects.create(broadcast=broadcast, user=user, status=status)
    data = admin_client.get(url("progress", broadcast.pk)).json()
    assert data == {
        "id": broadcast.pk, "status": "sending", "total": 4, "prepared": True, "pending": 1, "sending": 0,
        "delivered": 2, "blocked": 1, "failed": 0, "unknown": 0, "finished": False,
        "text": "Sending: 2 delivered, 1 blocked, 0 failed, 0 unknown, 1 pending (of 4)",  # the page shows it
    }  # fmt: skip
    page = admin_client.get(url("change", broadcast.pk)).content.decode()
    assert "2 delivered, 1 blocked, 0 failed, 0 unknown, 1 pending (of 4)" in page
    assert url("progress", broadcast.pk) in page  # polled by the page's script


def test_the_text_help_lists_the_tags_as_text(admin_client):
    """The admin renders a help text as HTML: the allowed tags must show, escaped, not vanish as markup."""
    page = admin_client.get(reverse("admin:botapp_broadcast_add")).content.decode()
    assert "&lt;b&gt;, &lt;i&gt;" in page and "&amp;lt;" in page
