"""No secret reaches the database, a log or the admin (botapp/redaction.py).

The bot token travels in every Bot API URL, file downloads included (``/file/bot<TOKEN>/...``), so a
failing download is where it leaked: the exception text held the URL, and that text was stored in
GenRequest.error_message, logged with its traceback and shown on the admin page.
"""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from django.urls import reverse

from botapp.models import GenRequest, Transaction, UserBalance

from .conftest import TOKEN, make_request, run_to_end, wait_until
from .test_worker_e2e import input_photo, png, wait_finished

pytestmark = pytest.mark.django_db(transaction=True)
SECRET_PART = TOKEN.split(":", 1)[1]


def assert_no_token(*texts: str) -> None:
    for text in texts:
        assert TOKEN not in text and SECRET_PART not in text


def stored_texts(request: GenRequest) -> list[str]:
    row = GenRequest.objects.filter(pk=request.pk).values().get()
    return [str(value) for value in row.values()]


@pytest.mark.slow
def test_failed_photo_download_leaks_no_token_and_says_what_happened(stack, tg_user, nano, emulator, admin_client):
    emu_user, user = tg_user(balance=10)
    photo = input_photo(emulator, png())
    emulator.fail_next("file", 404)  # getFile answers; the file URL does not
    request = make_request(user, nano, emu_user.chat_id, input_images=[photo])

    done = wait_finished(request.pk)
    assert done.status == "failed" and done.error_code == "input_image_unavailable"
    # The refund stays exactly once, and the user is told to send the photo again.
    assert Transaction.objects.filter(gen_request=done, kind=Transaction.Kind.REFUND).count() == 1
    assert UserBalance.objects.get(user=user).balance == Decimal(10)
    notice = wait_until(lambda: emulator.last_message(emu_user.chat_id), what="the failure notice")
    assert "could not download your photo" in notice["text"] and "send it again" in notice["text"]

    assert_no_token(*stored_texts(done))
    assert "404" in done.error_message
    page = admin_client.get(reverse("admin:botapp_genrequest_change", args=[done.pk]))
    assert page.status_code == 200
    assert_no_token(page.content.decode())
    assert_no_token(stack.log_path.read_text(errors="replace"))


def test_file_server_errors_are_retried_without_leaking_the_token(engine, tg_user, nano, emulator, caplog):
    caplog.set_level(logging.DEBUG)
    emu_user, user = tg_user(balance=10)
    photo = input_photo(emulator, png())
    emulator.fail_next("file", 502, times=3)  # one failed download attempt (three tries), then it works
    done = run_to_end(make_request(user, nano, emu_user.chat_id, input_images=[photo]).pk)
    assert done.status == "succeeded" and done.delivered_at
    assert_no_token(caplog.text, *stored_texts(done))


def test_stored_error_texts_are_redacted_whatever_raised_them(engine, settings, tg_user, nano):
    """The chokepoint itself: any message on its way to error_message loses the secrets it holds."""
    from botapp.engine import common, failures

    settings.GOOGLE_API_KEY = "AIza" + "k" * 35  # the shape of a Google API key, not a real one
    settings.WEBHOOK_SECRET = "webhook-secret-value"
    emu_user, user = tg_user(balance=10)
    request = common.load(make_request(user, nano, emu_user.chat_id).pk)
    message = (
        f"GET https://api.telegram.org/file/bot{TOKEN}/photos/a.jpg: 404; "
        f"?key={settings.GOOGLE_API_KEY}; secret={settings.WEBHOOK_SECRET}"
    )
    assert failures.fail(request, "internal", message) == "failed"
    stored = GenRequest.objects.get(pk=request.pk).error_message
    assert "[redacted]" in stored and "photos/a.jpg" in stored
    assert_no_token(stored)
    assert settings.GOOGLE_API_KEY not in stored and settings.WEBHOOK_SECRET not in stored


def test_admin_page_redacts_an_error_stored_before_redaction_existed(engine, tg_user, nano, admin_client):
    emu_user, user = tg_user(balance=10)
    request = make_request(user, nano, emu_user.chat_id)
    old_row_text = f"ClientResponseError: 404, url='http://127.0.0.1:8081/file/bot{TOKEN}/photos/file_3.jpg'"
    GenRequest.objects.filter(pk=request.pk).update(error_message=old_row_text)
    page = admin_client.get(reverse("admin:botapp_genrequest_change", args=[request.pk])).content.decode()
    assert "photos/file_3.jpg" in page and "[redacted]" in page
    assert_no_token(page)
