"""The user can always get a paid result: after an upload whose outcome is unknown the worker sends a
"your result #N is ready" notice (botapp/engine/delivery.py); its button makes the bot send the
result from storage, then by its file_id."""

from __future__ import annotations

import io

import pytest
from django.utils import timezone
from PIL import Image

from .conftest import eventually, fund, started, text_has, text_of

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (20, 160, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_ready_notice_button_sends_the_result_from_storage(chat_factory, bot, emu, settings, tmp_path):
    from botapp.engine import common, delivery
    from botapp.engine import results as engine_results
    from botapp.models import AIModel, GenRequest, TgUser, Transaction
    from botapp.providers import MediaItem, ProviderResult
    from botapp.services.generation import GenerationService
    from botapp.telegram.sender import close_sender

    settings.BOT_TOKEN, settings.TELEGRAM_API_URL = emu.token, emu.base_url  # the workers' sender
    settings.MEDIA_ROOT = str(tmp_path)
    chat = chat_factory(first_name="Ada", language_code="en")
    started(chat)
    fund(chat.id, 10)
    user = TgUser.objects.get(telegram_id=chat.id)
    nano = AIModel.objects.get(slug="nano-banana-2-1")
    request = GenerationService.create_request(
        user_id=user.pk, ai_model_id=nano.pk, chat_id=chat.id, prompt="a lighthouse at dawn"
    )
    # What a worker killed mid-upload leaves behind: a stored result marked "being sent", no file_id.
    GenerationService.mark_running(request_id=request.pk)
    results, _ = engine_results.store_media(
        common.load(request.pk), ProviderResult(media=[MediaItem("image/png", png())])
    )
    results[0]["send_started_at"] = timezone.now().isoformat()
    GenerationService.mark_succeeded(request_id=request.pk, results=results)
    try:
        delivery.deliver(request.pk)
    finally:
        close_sender()

    notice = chat.wait(text_has(f"#{request.pk}", "is ready"), edits=False)
    assert not [m for m in emu.messages(chat.id) if "photo" in m]  # the notice, not a blind re-upload
    photo = chat.press(notice, f"Get result #{request.pk}", lambda m: "photo" in m)
    assert "a lighthouse at dawn" in text_of(photo)
    with open(tmp_path / results[0]["path"], "rb") as fh:
        stored = fh.read()
    assert emu.file_bytes(photo) == stored
    file_id = photo["photo"][-1]["file_id"]
    done = eventually(lambda: GenRequest.objects.filter(pk=request.pk, results__0__tg_file_id=file_id).first())
    assert done is not None and done.delivered_at  # remembered for later re-sends
    assert not Transaction.objects.filter(gen_request=done, kind=Transaction.Kind.REFUND).exists()

    # Pressed again: sent by its file_id (no new upload).
    again = chat.press(notice, "Get result", lambda m: "photo" in m and m["message_id"] != photo["message_id"])
    assert again["photo"][-1]["file_id"] == file_id
