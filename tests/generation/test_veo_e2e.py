"""Veo 3.1's new inputs end to end through a REAL Celery worker process:

    GenerationService.create_request (photos by role, options) -> broker -> worker -> engine.inputs ->
    google-genai SDK -> fake Google (Vertex :predictLongRunning, polled) -> storage -> the chat (emulator)

asserting the exact fields Google received for a first + last frame video, then for an extension of
that delivered video (the stored clip sent back, 7 s more, never the source's id)."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from PIL import Image

from botapp.models import GenRequest, Transaction
from botapp.providers.media import probe_mp4
from botapp.services.generation import GenerationService

from .conftest import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def photo(emulator, colour: tuple[int, int, int], role: str) -> dict:
    """A photo the user sent, as the bot stores it in GenRequest.input_images, with its role."""
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), colour).save(buffer, format="JPEG")  # Telegram photos are JPEGs
    largest = emulator.store_user_photo(buffer.getvalue())[-1]
    return {
        "file_id": largest["file_id"],
        "file_unique_id": largest["file_unique_id"],
        "mime_type": "image/jpeg",
        "size": largest.get("file_size"),
        "width": largest["width"],
        "height": largest["height"],
        "role": role,
    }


def delivered(request_id: int) -> GenRequest:
    def check():
        request = GenRequest.objects.get(pk=request_id)
        if request.status in ("failed", "cancelled") or (request.status == "succeeded" and request.delivered_at):
            return request
        return None

    return wait_until(check, timeout=40, what=f"request #{request_id} to be delivered")


def chat_videos(emulator, chat_id: int) -> list[dict]:
    return [m for m in emulator.messages(chat_id) if "video" in m]


def test_first_last_frame_video_then_its_extension(stack, tg_user, veo, emulator, fake_google):
    emu_user, user = tg_user(balance=Decimal(500))
    chat = emu_user.chat_id
    first, last = photo(emulator, (240, 20, 20), "first"), photo(emulator, (20, 20, 240), "last")

    # 1. From the first frame to the last one, at 1080p, without sound, avoiding text.
    request = GenerationService.create_request(
        user_id=user.pk,
        ai_model_id=veo.pk,
        chat_id=chat,
        prompt="a red balloon turns into a blue one",
        input_images=[first, last],
        params={"aspect_ratio": "16:9", "resolution": "1080p", "duration_seconds": 8, "generate_audio": False},
        negative_prompt="text",
    )
    done = delivered(request.pk)
    assert done.status == "succeeded", (done.error_code, done.error_message)
    sent = fake_google.last("predictLongRunning")
    assert sent.model == veo.provider_model_id and sent.backend == "vertex"
    assert set(sent.instance) == {"prompt", "image", "lastFrame"}
    assert sent.instance["prompt"] == "a red balloon turns into a blue one"
    assert sent.first_frame == ("image/jpeg", emulator.file_bytes(first["file_id"]))  # downloaded from Telegram
    assert sent.last_frame == ("image/jpeg", emulator.file_bytes(last["file_id"]))
    assert sent.parameters == {
        "sampleCount": 1,
        "aspectRatio": "16:9",
        "durationSeconds": 8,
        "resolution": "1080p",
        "negativePrompt": "text",
        "generateAudio": False,
    }
    videos = chat_videos(emulator, chat)
    assert len(videos) == 1
    with open(stack.folder / "media" / done.results[0]["path"], "rb") as fh:
        stored = fh.read()
    assert emulator.file_bytes(videos[0]) == stored == fake_google.video_bytes("16:9")

    # 2. Extend the delivered video: the stored clip goes back to Google, and a longer one comes out.
    extension = GenerationService.create_request(
        user_id=user.pk,
        ai_model_id=veo.pk,
        chat_id=chat,
        prompt="the blue balloon flies away",
        params={"extend_from": done.pk},
    )
    extended = delivered(extension.pk)
    assert extended.status == "succeeded", (extended.error_code, extended.error_message)
    sent = fake_google.last("predictLongRunning")
    assert set(sent.instance) == {"prompt", "video"}
    assert sent.source_video == ("video/mp4", stored)
    assert "extend_from" not in str(sent.json)
    assert sent.parameters["durationSeconds"] == 7 and sent.parameters["resolution"] == "720p"
    videos = chat_videos(emulator, chat)
    assert len(videos) == 2
    new_bytes = emulator.file_bytes(videos[-1])
    assert probe_mp4(new_bytes).duration == pytest.approx(probe_mp4(stored).duration + 7)
    assert extended.results[0]["duration"] == pytest.approx(8.0)
    assert Transaction.objects.filter(gen_request__in=[done, extended], kind="refund").count() == 0
