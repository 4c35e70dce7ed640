"""A request's inputs on their way to Google, run in this process (tasks eager) against the fake
Google: photos by role (first / last frame, references, photos to edit), the stored video an extension
continues, and the clean, refunded failure when that video is gone."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from botapp.engine import inputs
from botapp.models import GenRequest, Transaction, UserBalance
from botapp.providers.media import probe_mp4

from .conftest import make_request, run_to_end

pytestmark = pytest.mark.django_db(transaction=True)
D = Decimal


def stored_png(colour: tuple[int, int, int], name: str) -> dict:
    """A photo in our storage, as GenRequest.input_images holds one of our results."""
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), colour).save(buffer, format="PNG")
    path = default_storage.save(f"inputs/{name}.png", ContentFile(buffer.getvalue()))
    return {"path": path, "mime_type": "image/png", "size": len(buffer.getvalue()), "bytes": buffer.getvalue()}


def photo(image: dict, role: str) -> dict:
    return {"path": image["path"], "mime_type": "image/png", "size": image["size"], "role": role}


def delivered_video(user, veo, chat_id) -> GenRequest:
    """A Veo video of this user, made by the fake Google and (as far as the extension cares) delivered."""
    done = run_to_end(make_request(user, veo, chat_id, prompt="a kite over the dunes").pk)
    assert done.status == "succeeded", (done.error_code, done.error_message)
    if done.delivered_at is None:
        from django.utils import timezone

        GenRequest.objects.filter(pk=done.pk).update(delivered_at=timezone.now())
        done.refresh_from_db()
    return done


def test_first_and_last_frame_reach_google_in_their_fields(engine, tg_user, veo, fake_google):
    emu_user, user = tg_user(balance=100)
    first, last = stored_png((250, 0, 0), "first"), stored_png((0, 0, 250), "last")
    request = make_request(
        user,
        veo,
        emu_user.chat_id,
        prompt="from red to blue",
        input_images=[photo(last, "last"), photo(first, "first")],  # order does not matter, roles do
        params={"aspect_ratio": "9:16", "duration_seconds": 6, "generate_audio": False},
        negative_prompt="blur",
    )
    done = run_to_end(request.pk)
    assert done.status == "succeeded", (done.error_code, done.error_message)
    sent = fake_google.last("predictLongRunning")
    assert sent.model == veo.provider_model_id
    assert sent.first_frame == ("image/png", first["bytes"])
    assert sent.last_frame == ("image/png", last["bytes"])
    assert "referenceImages" not in sent.instance and "video" not in sent.instance
    assert sent.parameters == {
        "sampleCount": 1,
        "aspectRatio": "9:16",
        "durationSeconds": 6,
        "resolution": "720p",
        "negativePrompt": "blur",
        "generateAudio": False,
    }


def test_reference_images_reach_google_as_assets(engine, tg_user, veo, fake_google):
    emu_user, user = tg_user(balance=100)
    refs = [stored_png((i * 80, 40, 40), f"ref{i}") for i in range(3)]
    request = make_request(
        user,
        veo,
        emu_user.chat_id,
        prompt="this dog in a park",
        input_images=[photo(r, "reference") for r in refs],
        params={"duration_seconds": 8},
    )
    done = run_to_end(request.pk)
    assert done.status == "succeeded", (done.error_code, done.error_message)
    sent = fake_google.last("predictLongRunning")
    assert sent.reference_images == [("image/png", r["bytes"], "ASSET") for r in refs]
    assert sent.first_frame is None and sent.last_frame is None


def test_photos_of_an_image_model_are_its_input_images(engine, tg_user, nano, fake_google):
    emu_user, user = tg_user(balance=100)
    images = [stored_png((10 * i, 200, 30), f"nb{i}") for i in range(5)]
    request = make_request(
        user,
        nano,
        emu_user.chat_id,
        prompt="a collage",
        input_images=[photo(i, "image") for i in images],
        params={"resolution": "4K", "aspect_ratio": "8:1"},
    )
    done = run_to_end(request.pk)
    assert done.status == "succeeded", (done.error_code, done.error_message)
    sent = fake_google.last("generateContent")
    assert [data for _, data in sent.input_images] == [i["bytes"] for i in images]
    assert sent.generation_config["imageConfig"] == {"aspectRatio": "8:1", "imageSize": "4K"}


def test_extension_sends_the_stored_video_and_not_the_source_id(engine, tg_user, veo, fake_google):
    emu_user, user = tg_user(balance=100)
    source = delivered_video(user, veo, emu_user.chat_id)
    with default_storage.open(source.results[0]["path"], "rb") as fh:
        source_bytes = fh.read()
    request = make_request(user, veo, emu_user.chat_id, prompt="the kite lands", params={"extend_from": source.pk})
    assert request.params["extend_from"] == source.pk  # kept on the request...
    done = run_to_end(request.pk)
    assert done.status == "succeeded", (done.error_code, done.error_message)
    sent = fake_google.last("predictLongRunning")
    assert "extend_from" not in str(sent.json)  # ...but never sent to Google
    assert sent.source_video == ("video/mp4", source_bytes)
    assert sent.first_frame is None
    assert sent.parameters["durationSeconds"] == 7 and sent.parameters["resolution"] == "720p"
    with default_storage.open(done.results[0]["path"], "rb") as fh:
        assert probe_mp4(fh.read()).duration == pytest.approx(8.0)  # the source's second and 7 more
    assert done.results[0]["duration"] == pytest.approx(8.0)


def test_a_missing_source_video_fails_cleanly_and_is_refunded(engine, tg_user, veo, fake_google):
    emu_user, user = tg_user(balance=100)
    source = delivered_video(user, veo, emu_user.chat_id)
    before = UserBalance.objects.get(user=user).balance
    request = make_request(user, veo, emu_user.chat_id, prompt="more", params={"extend_from": source.pk})
    assert UserBalance.objects.get(user=user).balance < before
    default_storage.delete(source.results[0]["path"])  # the stored file is gone (a storage cleanup)
    calls = len(fake_google.requests_for("predictLongRunning"))
    done = run_to_end(request.pk)
    assert done.status == "failed" and done.error_code == "input_video_unavailable"
    assert len(fake_google.requests_for("predictLongRunning")) == calls  # Google was never asked
    assert Transaction.objects.filter(gen_request=done, kind="refund").count() == 1
    assert UserBalance.objects.get(user=user).balance == before


def test_an_unreadable_photo_in_any_role_fails_before_google(engine, tg_user, veo, fake_google):
    emu_user, user = tg_user(balance=100)
    first = stored_png((1, 2, 3), "good")
    path = default_storage.save("inputs/broken.png", ContentFile(b"\x89PNG\r\n\x1a\nnot really"))
    request = make_request(
        user,
        veo,
        emu_user.chat_id,
        input_images=[photo(first, "first"), {"path": path, "size": 18, "role": "last"}],
    )
    done = run_to_end(request.pk)
    assert done.status == "failed" and done.error_code == "input_image_invalid"
    assert fake_google.requests_for("predictLongRunning") == []
    assert Transaction.objects.filter(gen_request=done, kind="refund").count() == 1


def test_polling_needs_neither_photos_nor_the_source_video(engine, tg_user, veo):
    emu_user, user = tg_user(balance=100)
    source = delivered_video(user, veo, emu_user.chat_id)
    request = make_request(user, veo, emu_user.chat_id, prompt="more", params={"extend_from": source.pk})
    default_storage.delete(source.results[0]["path"])
    provider_request = inputs.build_provider_request(request, with_images=False)  # reads nothing
    assert provider_request.source_video is None and provider_request.input_images == []
    assert "extend_from" not in provider_request.params
    with pytest.raises(inputs.InputVideoError) as info:
        inputs.build_provider_request(request, with_images=True)
    assert info.value.code == "input_video_unavailable"
