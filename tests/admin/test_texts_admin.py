"""The bot's editable texts and the support inbox in the admin: a text Telegram would refuse is refused
on save with the reason, a saved text is what /terms shows, and support requests are read-only except
their status."""

from __future__ import annotations

import pytest
from django.urls import reverse

from botapp.models import BotText, SupportRequest
from botapp.selectors.texts import bot_text
from tests.admin.test_admin import messages_of, post_action, url

pytestmark = pytest.mark.django_db


def add_text(client, **fields):
    data = {"key": BotText.Key.TERMS, "text_ru": "", "text_en": "", **fields}
    return client.post(url(BotText, "add"), data)


def test_a_saved_terms_text_is_what_the_bot_shows(admin_client):
    response = add_text(admin_client, text_en="<b>Our terms</b>: be kind.", text_ru="<b>Условия</b>")
    assert response.status_code == 302, response.content[:2000]
    assert bot_text(key=BotText.Key.TERMS, lang="en") == "<b>Our terms</b>: be kind."
    assert bot_text(key=BotText.Key.TERMS, lang="ru") == "<b>Условия</b>"
    listing = admin_client.get(url(BotText, "changelist")).content.decode()
    assert "Our terms" in listing


def test_html_telegram_would_refuse_is_refused_with_the_reason(admin_client):
    response = add_text(admin_client, text_en="<b>unclosed", text_ru="<script>x</script>")
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors["text_en"] and form.errors["text_ru"]
    assert not BotText.objects.exists()


def test_an_empty_language_falls_back_to_the_default(admin_client):
    add_text(admin_client, text_en="Custom English terms")
    assert bot_text(key=BotText.Key.TERMS, lang="en") == "Custom English terms"
    assert bot_text(key=BotText.Key.TERMS, lang="ru") != ""  # the catalogue's default


@pytest.fixture
def request_row(make_user):
    user = make_user(username="eve")
    return SupportRequest.objects.create(
        user=user,
        text="My payment <b>vanished</b>",
        payments=[{"code": "ch_1", "amount": "50 XTR", "status": "succeeded"}],
    )


def test_support_requests_show_the_payments_escaped_and_cannot_be_added(admin_client, request_row):
    page = admin_client.get(url(SupportRequest, "change", request_row.pk)).content.decode()
    assert "ch_1" in page and "50 XTR" in page
    assert "My payment &lt;b&gt;vanished&lt;/b&gt;" in page
    assert reverse("admin:botapp_tguser_change", args=(request_row.user_id,)) in page
    assert admin_client.get(url(SupportRequest, "add")).status_code == 403


def test_support_request_status_actions(admin_client, request_row):
    response = post_action(admin_client, SupportRequest, "mark_answered", [request_row.pk], follow=True)
    assert any("Updated 1" in m for m in messages_of(response))
    request_row.refresh_from_db()
    assert request_row.status == SupportRequest.Status.ANSWERED
    post_action(admin_client, SupportRequest, "mark_closed", [request_row.pk])
    request_row.refresh_from_db()
    assert request_row.status == SupportRequest.Status.CLOSED
