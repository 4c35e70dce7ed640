"""End to end through a REAL Celery worker process (not eager mode):

    test -> GenerationService.create_request (charged; enqueued on commit) -> broker -> worker
    worker -> google-genai SDK -> fake Google server;  worker -> aiogram -> Bot API emulator

Every scenario ends in a definite state: delivered once, or failed with exactly one refund and a
message that says what happened.
"""

from __future__ import annotations

import io
from decimal import Decimal

import httpx
import pytest
from PIL import Image

from botapp.models import GenRequest, TgUser, Transaction, UserBalance, UserSettings
from botapp.services.generation import GenerationService
from sandbox.telegram import button_texts

from .conftest import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
D = Decimal


# --- helpers -----------------------------------------------------------------------------------------
def create(user, model, chat_id, status_message_id=None, **kw):
    kw.setdefault("prompt", "a red fox in the snow")
    return GenerationService.create_request(
        user_id=user.pk, ai_model_id=model.pk, chat_id=chat_id, status_message_id=status_message_id, **kw
    )


def status_message(emulator, chat_id: int, text: str = "⏳ queued…") -> int:
    """What the bot's handler does before creating the request: a status message to edit later."""
    url = f"{emulator.base_url}/bot{emulator.token}/sendMessage"
    response = httpx.post(url, json={"chat_id": chat_id, "text": text})
    return response.json()["result"]["message_id"]


def finished(request_id: int):
    def check():
        request = GenRequest.objects.get(pk=request_id)
        if request.status in ("failed", "cancelled") or (request.status == "succeeded" and request.delivered_at):
            return request
        return None

    return check


def wait_finished(request_id: int, timeout: float = 20.0) -> GenRequest:
    return wait_until(finished(request_id), timeout=timeout, what=f"request #{request_id} to finish")


def media_messages(emulator, chat_id: int, kind: str) -> list[dict]:
    return [m for m in emulator.messages(chat_id) if kind in m]


def refunds(request: GenRequest) -> int:
    return Transaction.objects.filter(gen_request=request, kind=Transaction.Kind.REFUND).count()


def png(color=(200, 30, 30), size=(96, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def input_photo(emulator, data: bytes) -> dict:
    """A photo as the bot stores it in GenRequest.input_images (the largest PhotoSize)."""
    largest = emulator.store_user_photo(data)[-1]
    return {
        "file_id": largest["file_id"],
        "file_unique_id": largest["file_unique_id"],
        "mime_type": "image/jpeg",
        "size": largest.get("file_size"),
        "width": largest["width"],
        "height": largest["height"],
    }


# --- happy paths ---------------------------------------------------------------------------------------
def test_image_generated_and_delivered_as_photo(stack, tg_user, nano, emulator, fake_google):
    emu_user, user = tg_user(balance=10)
    chat = emu_user.chat_id
    status_id = status_message(emulator, chat)
    mark = emulator.mark()
    request = create(user, nano, chat, status_id, params={"aspect_ratio": "16:9"})

    done = wait_finished(request.pk)
    assert done.status == "succeeded", (done.error_code, done.error_message)
    photos = media_messages(emulator, chat, "photo")
    assert len(photos) == 1
    photo = photos[0]
    result = done.results[0]
    # The photo Telegram got is the stored result, and its file_id is kept for re-sends.
    assert result["tg_file_id"] == photo["photo"][-1]["file_id"] and result["sent_as"] == "photo"
    with open(stack.folder / "media" / result["path"], "rb") as fh:
        assert emulator.file_bytes(photo) == fh.read()
    assert fake_google.last("generateContent").aspect_ratio == "16:9"
    # Caption and the buttons: regenerate / (edit / animate) / menu.
    assert "a red fox in the snow" in photo["caption"] and "Nano Banana" in photo["caption"]
    assert len(button_texts(photo)) >= 2
    # Progress: the status message was edited to "generating", a chat action shown, then removed.
    edits = [e for e in emulator.events("bot_edit", chat, since=mark) if e.message_id == status_id]
    assert any("generating" in e.data.get("text", "") for e in edits)
    assert "upload_photo" in emulator.chat_actions(chat)
    wait_until(lambda: emulator.is_deleted(chat, status_id), timeout=5, what="the status message to go")
    # Money: charged once, nothing refunded, XP awarded.
    assert UserBalance.objects.get(user=user).balance == D("8.50")
    assert refunds(done) == 0
    assert TgUser.objects.get(pk=user.pk).xp > 0


def test_edit_with_two_input_photos(stack, tg_user, nano, emulator, fake_google):
    emu_user, user = tg_user()
    images = [input_photo(emulator, png((255, 0, 0))), input_photo(emulator, png((0, 0, 255)))]
    request = create(user, nano, emu_user.chat_id, prompt="put the two together", input_images=images)

    done = wait_finished(request.pk)
    assert done.status == "succeeded", (done.error_code, done.error_message)
    sent = fake_google.last("generateContent")
    assert len(sent.input_images) == 2  # both photos went to Google, downloaded from Telegram
    colours = [Image.open(io.BytesIO(data)).getpixel((0, 0)) for _, data in sent.input_images]
    assert colours == [(255, 0, 0), (0, 0, 255)]
    assert len(media_messages(emulator, emu_user.chat_id, "photo")) == 1


def test_video_polled_several_times_and_delivered(stack, tg_user, veo, emulator, fake_google):
    emu_user, user = tg_user(balance=50)
    request = create(user, veo, emu_user.chat_id, prompt="waves at sunset [[polls:4]]")

    done = wait_finished(request.pk, timeout=30)
    assert done.status == "succeeded", (done.error_code, done.error_message)
    assert done.provider_operation_id
    assert len(fake_google.requests_for("predictLongRunning")) == 1
    assert len(fake_google.requests_for("fetchPredictOperation")) >= 4
    videos = media_messages(emulator, emu_user.chat_id, "video")
    assert len(videos) == 1
    assert emulator.file_bytes(videos[0]) == fake_google.video_bytes("16:9")
    assert done.results[0]["sent_as"] == "video" and done.results[0]["tg_file_id"] == videos[0]["video"]["file_id"]
    assert UserBalance.objects.get(user=user).balance == D(31)
    assert refunds(done) == 0


def test_send_as_file_delivers_a_document(stack, tg_user, nano, emulator):
    emu_user, user = tg_user()
    UserSettings.objects.filter(user=user).update(send_as_file=True)
    done = wait_finished(create(user, nano, emu_user.chat_id).pk)
    assert done.status == "succeeded"
    assert len(media_messages(emulator, emu_user.chat_id, "document")) == 1
    assert done.results[0]["sent_as"] == "document"


def test_flood_control_during_delivery_is_waited_out(stack, tg_user, nano, emulator):
    emu_user, user = tg_user()
    emulator.fail_next("sendPhoto", 429, retry_after=1, chat_id=emu_user.chat_id)
    done = wait_finished(create(user, nano, emu_user.chat_id).pk)
    assert done.status == "succeeded"
    assert emulator.call_count("sendPhoto", emu_user.chat_id, ok=False) == 1
    assert emulator.call_count("sendPhoto", emu_user.chat_id, ok=True) == 1
    assert len(media_messages(emulator, emu_user.chat_id, "photo")) == 1


# --- failures: each ends failed, refunded exactly once, with an explanation ------------------------------
SHORT_IMAGE = {"IMAGE_TIMEOUT_SECONDS": 2}
SHORT_VIDEO = {"VIDEO_TIMEOUT_SECONDS": 2}
FAILURES = [
    # (id, model fixture, prompt, expected error_code, words of the message, settings)
    ("safety-output", "nano", "a cat [[safety]]", "safety_blocked", "safety filter", {}),
    ("safety-prompt", "nano", "a cat [[blocked]]", "safety_blocked", "safety filter", {}),
    ("invalid-argument", "nano", "a cat [[error:400]]", "invalid_input", "did not accept", {}),
    ("no-image", "nano", "a cat [[no_image]]", "no_image", "returned no image", {}),
    ("busy-429-past-deadline", "nano", "a cat [[error:429]]", "rate_limited", "overloaded", SHORT_IMAGE),
    ("5xx-storm", "nano", "a cat [[error:503]]", "provider_busy", "overloaded", SHORT_IMAGE),
    ("video-never-finishes", "veo", "sea [[never]]", "operation_timeout", "did not finish in time", SHORT_VIDEO),
    ("video-safety", "veo", "sea [[rai]]", "safety_blocked", "safety filter", {}),
    ("video-operation-error", "veo", "sea [[op_error:9]]", "operation_failed", "could not complete", {}),
    ("video-download-fails", "veo", "sea [[download_error:404]]", "download_failed", "could not be downloaded", {}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("model_name", "prompt", "code", "words", "overrides"),
    [pytest.param(*case[1:], id=case[0]) for case in FAILURES],
)
def test_provider_failures_are_refunded_once(
    stack, tg_user, emulator, request, settings, model_name, prompt, code, words, overrides
):
    for name, value in overrides.items():
        setattr(settings, name, value)  # the deadline is set when the request is created, here
    model = request.getfixturevalue(model_name)
    emu_user, user = tg_user(balance=50)
    created = create(user, model, emu_user.chat_id, prompt=prompt)

    done = wait_finished(created.pk, timeout=30)
    assert done.status == "failed" and done.error_code == code, (done.error_code, done.error_message)
    notice = emulator.wait_for_message(emu_user.chat_id, lambda m: "back on your balance" in m.get("text", ""), since=0)
    assert words in notice["text"], notice["text"]
    assert refunds(done) == 1
    assert UserBalance.objects.get(user=user).total == D(50)
    assert not media_messages(emulator, emu_user.chat_id, "photo")
    assert not media_messages(emulator, emu_user.chat_id, "video")


def test_failed_operation_is_started_again_then_refunded(stack, tg_user, veo, emulator, fake_google, settings):
    settings.VIDEO_TIMEOUT_SECONDS = 8  # room for a second operation on a loaded machine
    emu_user, user = tg_user(balance=50)
    created = create(user, veo, emu_user.chat_id, prompt="storm [[op_error:13]]")  # Google's INTERNAL, every time
    done = wait_finished(created.pk, timeout=30)
    # Which of the two ends the request depends on timing: the last operation failing again after
    # the deadline passed ("busy"), or the deadline passing while it was still running ("timeout").
    assert done.status == "failed"
    assert done.error_code in ("operation_failed_transient", "operation_timeout")
    assert len(fake_google.requests_for("predictLongRunning")) >= 2  # a new operation, not the same poll
    told = ("overloaded", "did not finish in time")
    emulator.wait_for_message(emu_user.chat_id, lambda m: any(w in m.get("text", "") for w in told), since=0)
    assert refunds(done) == 1


def test_corrupt_input_image_is_refunded(stack, tg_user, nano, emulator):
    emu_user, user = tg_user()
    document = emulator.store_user_file("document", b"this is not an image at all", "photo.jpg", "image/jpeg")
    meta = {"file_id": document["file_id"], "file_unique_id": document["file_unique_id"], "mime_type": "image/jpeg"}
    done = wait_finished(create(user, nano, emu_user.chat_id, input_images=[meta]).pk)
    assert done.status == "failed" and done.error_code == "input_image_invalid"
    notice = emulator.wait_for_message(emu_user.chat_id, lambda m: "could not be read" in m.get("text", ""), since=0)
    assert "back on your balance" in notice["text"]
    assert refunds(done) == 1


def test_oversize_input_image_is_refunded(stack, tg_user, nano, emulator, settings):
    emu_user, user = tg_user()
    meta = input_photo(emulator, png())
    meta["size"] = settings.MAX_INPUT_IMAGE_BYTES + 1
    done = wait_finished(create(user, nano, emu_user.chat_id, input_images=[meta]).pk)
    assert done.status == "failed" and done.error_code == "input_image_too_large"
    emulator.wait_for_message(emu_user.chat_id, lambda m: "too large" in m.get("text", ""), since=0)
    assert refunds(done) == 1


def test_telegram_refusing_the_file_is_refunded(stack, tg_user, nano, emulator):
    emu_user, user = tg_user()
    chat = emu_user.chat_id
    emulator.fail_next("sendPhoto", 400, description="Bad Request: PHOTO_INVALID_DIMENSIONS", chat_id=chat)
    emulator.fail_next("sendDocument", 400, description="Bad Request: file is too big", chat_id=chat)
    done = wait_finished(create(user, nano, chat).pk)
    assert done.status == "failed" and done.error_code == "telegram_refused"
    assert done.delivered_at is None and refunds(done) == 1
    emulator.wait_for_message(chat, lambda m: "Telegram did not accept" in m.get("text", ""), since=0)


def test_user_who_blocked_the_bot_is_refunded_and_marked(stack, tg_user, nano, emulator):
    emu_user, user = tg_user()
    emulator.block_bot(emu_user.chat_id)
    try:
        done = wait_finished(create(user, nano, emu_user.chat_id).pk)
    finally:
        emulator.unblock_bot(emu_user.chat_id)
    assert done.status == "failed" and done.error_code == "bot_blocked"
    assert refunds(done) == 1
    assert TgUser.objects.get(pk=user.pk).bot_blocked


# --- duplicates and crashes -----------------------------------------------------------------------------
def test_duplicate_task_executions_deliver_once(stack, tg_user, nano, emulator, fake_google):
    from botapp import tasks

    emu_user, user = tg_user()
    request = create(user, nano, emu_user.chat_id, prompt="a lighthouse [[latency:0.5]]")
    for _ in range(3):  # the broker redelivers, a retry fires, the sweep re-dispatches...
        tasks.run_generation.delay(request.pk)
        tasks.deliver_generation.delay(request.pk)
    done = wait_finished(request.pk)
    assert done.status == "succeeded"
    wait_until(lambda: emulator.call_count("sendPhoto", emu_user.chat_id) >= 1, timeout=5)
    tasks.deliver_generation.delay(request.pk)
    wait_until(lambda: not GenRequest.objects.filter(pk=request.pk, next_poll_at__isnull=False).exists(), timeout=5)
    assert emulator.call_count("sendPhoto", emu_user.chat_id) == 1
    assert len(fake_google.requests_for("generateContent")) == 1
    assert UserBalance.objects.get(user=user).balance == D("98.50")


def test_worker_killed_during_a_video_is_resumed(stack, tg_user, veo, emulator, fake_google):
    emu_user, user = tg_user(balance=50)
    request = create(user, veo, emu_user.chat_id, prompt="northern lights [[seconds:3]]")
    wait_until(
        lambda: (
            GenRequest.objects.filter(pk=request.pk).exclude(provider_operation_id="").exists()
            and len(fake_google.requests_for("fetchPredictOperation")) >= 2
        ),
        timeout=15,
        what="the operation to be submitted and polled",
    )
    stack.kill()  # SIGKILL: no warm shutdown, nothing acknowledged
    polls_before = len(fake_google.requests_for("fetchPredictOperation"))
    assert GenRequest.objects.get(pk=request.pk).status == "running"

    stack.start()
    done = wait_finished(request.pk, timeout=30)
    assert done.status == "succeeded", (done.error_code, done.error_message)
    assert len(fake_google.requests_for("predictLongRunning")) == 1  # resumed, not submitted again
    assert len(fake_google.requests_for("fetchPredictOperation")) > polls_before
    assert emulator.call_count("sendVideo", emu_user.chat_id) == 1
    assert refunds(done) == 0 and UserBalance.objects.get(user=user).balance == D(31)


def test_worker_killed_during_an_image_call_is_retried(stack, tg_user, nano, emulator, fake_google):
    emu_user, user = tg_user()
    request = create(user, nano, emu_user.chat_id, prompt="a slow cat [[latency:4]]")
    wait_until(lambda: fake_google.requests_for("generateContent"), timeout=10, what="the Google call")
    stack.kill()
    assert GenRequest.objects.get(pk=request.pk).status == "running"
    stack.start()
    done = wait_finished(request.pk, timeout=30)
    assert done.status == "succeeded", (done.error_code, done.error_message)
    assert emulator.call_count("sendPhoto", emu_user.chat_id) == 1
    assert refunds(done) == 0 and UserBalance.objects.get(user=user).balance == D("98.50")


def test_queued_request_never_dispatched_is_picked_up_by_the_sweep(stack, tg_user, nano, emulator, settings):
    settings.GENERATION_DISPATCH = ""  # the hand-over is lost: the request stays "queued"
    emu_user, user = tg_user()
    request = create(user, nano, emu_user.chat_id)
    request.refresh_from_db()
    assert request.status == "queued"
    done = wait_finished(request.pk, timeout=30)  # the sweep re-dispatches after 3 s (test setting)
    assert done.status == "succeeded"
    assert emulator.call_count("sendPhoto", emu_user.chat_id) == 1
