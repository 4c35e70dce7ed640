"""Albums in the bot: the message under an album of variants (Edit N, Upscale N), the history's
"N of M variants", re-sending an album, and Extend under a delivered video. The worker's side runs
in-process (botapp.engine.delivery with the one sender) against the same emulator as the bot."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from PIL import Image

from sandbox.telegram import button_texts, sample_mp4
from tests.bot.conftest import eventually, fund, started, text_has, text_of

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
D = Decimal


def png(color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), color).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def workers(emu, settings, tmp_path):
    """The workers' sender on the bot's emulator; results stored under tmp_path."""
    from botapp.telegram.sender import close_sender

    settings.BOT_TOKEN, settings.TELEGRAM_API_URL = emu.token, emu.base_url
    settings.TELEGRAM_GLOBAL_RATE = settings.TELEGRAM_CHAT_RATE = settings.TELEGRAM_AUX_RATE = 1000
    settings.MEDIA_ROOT = str(tmp_path)
    close_sender()
    yield
    close_sender()


def deliver_album(chat, *, variants: int = 4, blocked: int = 1):
    """What the engine does for a request of `variants` variants, `blocked` of them blocked: store the
    rest, mark it succeeded, deliver it (an album and one message of buttons)."""
    from botapp.engine import common, delivery
    from botapp.engine import results as engine_results
    from botapp.models import AIModel, GenRequest, TgUser
    from botapp.providers import MediaItem, ProviderResult
    from botapp.services.generation import GenerationService

    user = TgUser.objects.get(telegram_id=chat.id)
    nano = AIModel.objects.get(slug="nano-banana-2-1")
    request = GenerationService.create_request(
        user_id=user.pk, ai_model_id=nano.pk, chat_id=chat.id, prompt="four lighthouses", variants=variants
    )
    GenerationService.mark_running(request_id=request.pk)
    loaded = common.load(request.pk)
    results = []
    for index in range(variants):
        if index < blocked:
            results.append({"variant": index, "kind": "image", "failed": True, "error_code": "safety_blocked"})
            continue
        item = ProviderResult(media=[MediaItem("image/png", png((40 * index, 90, 200)))])
        results += engine_results.store_media(loaded, item, variant=index)[0]
    kept = variants - blocked
    GenerationService.mark_succeeded(request_id=request.pk, results=results, paid_variants=kept)
    assert delivery.deliver(request.pk) is None
    return GenRequest.objects.get(pk=request.pk)


def test_upscale_and_edit_from_the_album_message(chat_factory, bot, emu, workers):
    from botapp.models import GenRequest

    chat = chat_factory(first_name="Ada", language_code="en")
    started(chat)
    fund(chat.id, 20)
    request = deliver_album(chat)
    photos = [m for m in emu.messages(chat.id) if "photo" in m]
    assert len(photos) == 3 and len({p["media_group_id"] for p in photos}) == 1
    summary = chat.wait(text_has("3 of 4 variants are ready"), since=0, edits=False)
    assert "Blocked by the safety filter: 1" in text_of(summary) and "1.5" in text_of(summary)
    assert {"✏️ Edit 1", "✏️ Edit 3", "🔍 Upscale 2", "🎬 Animate 1"} <= set(button_texts(summary))

    card = chat.press(summary, "🔍 Upscale 2", text_has("Check and confirm"))
    assert "Upscale this image" in text_of(card) and "4K" in text_of(card)
    chat.press(card, "Generate", text_has("In the queue"))
    upscale = eventually(lambda: GenRequest.objects.exclude(pk=request.pk).first())
    second = request.results[2]  # album position 2 is the third variant (the first was blocked)
    assert upscale.params["resolution"] == "4K" and upscale.variants == 1
    assert upscale.input_images[0]["file_id"] == second["tg_file_id"] == photos[1]["photo"][-1]["file_id"]
    assert upscale.price == D("3.38")  # 1.50 x 2.25 (4K), rounded half up

    edit = chat.press(summary, "✏️ Edit 3", text_has("Editing"))
    card = chat.send("add a moon", text_has("Check and confirm"))
    chat.press(card, "Generate", text_has("In the queue"))
    edited = eventually(lambda: GenRequest.objects.exclude(pk__in=(request.pk, upscale.pk)).first())
    assert edit and edited.input_images[0]["file_id"] == photos[2]["photo"][-1]["file_id"]


def test_history_and_resend_of_an_album(chat_factory, bot, emu, workers):
    chat = chat_factory(first_name="Ben", language_code="en")
    menu = started(chat)
    fund(chat.id, 20)
    request = deliver_album(chat, variants=3, blocked=1)
    before = len([m for m in emu.messages(chat.id) if "photo" in m])
    profile = chat.press(menu, "Profile", text_has("Level"))
    history = chat.press(profile, "History", text_has(f"#{request.pk}"))
    assert "2 of 3 variants" in text_of(history)

    mark = chat.mark()
    chat.press(history, f"#{request.pk}", text_has(f"#{request.pk}", "2 of 3 variants"))
    again = [e.data for e in emu.events("bot_message", chat.id, since=mark) if "photo" in e.data]
    assert len(again) == 2 and again[0]["media_group_id"] == again[1]["media_group_id"]
    assert again[0]["photo"][-1]["file_id"] == request.results[1]["tg_file_id"]  # by file_id, no upload
    buttons = chat.wait(lambda m: "✏️ Edit 2" in button_texts(m), since=mark, edits=False)
    assert "🔁 Again" in button_texts(buttons)
    assert len([m for m in emu.messages(chat.id) if "photo" in m]) == before + 2


def test_extend_under_a_delivered_video(chat_factory, bot, emu, workers):
    from botapp.engine import common, delivery
    from botapp.engine import results as engine_results
    from botapp.models import AIModel, GenRequest, TgUser
    from botapp.providers import MediaItem, ProviderResult
    from botapp.services.generation import GenerationService

    chat = chat_factory(first_name="Cleo", language_code="en")
    started(chat)
    fund(chat.id, 100)
    user = TgUser.objects.get(telegram_id=chat.id)
    veo = AIModel.objects.get(slug="veo-3-1-fast")
    source = GenerationService.create_request(
        user_id=user.pk, ai_model_id=veo.pk, chat_id=chat.id, prompt="a fox runs", params={"duration_seconds": 4}
    )
    GenerationService.mark_running(request_id=source.pk)
    stored, _ = engine_results.store_media(
        common.load(source.pk), ProviderResult(media=[MediaItem("video/mp4", sample_mp4(320, 180, 2))])
    )
    GenerationService.mark_succeeded(request_id=source.pk, results=stored)
    assert delivery.deliver(source.pk) is None
    video = chat.wait(lambda m: "video" in m, since=0, edits=False)
    assert "➕ Extend the video" in button_texts(video)

    ask = chat.press(video, "Extend the video", text_has("Continue the video"))
    card = chat.send("the fox jumps over a river", text_has("Check and confirm"))
    assert ask and f"#{source.pk}" in text_of(card)
    chat.press(card, "Generate", text_has("In the queue"))
    extension = eventually(lambda: GenRequest.objects.exclude(pk=source.pk).first())
    assert extension.params["extend_from"] == source.pk and extension.input_images == []
    assert extension.params["duration_seconds"] == veo.caps.extension_seconds


def test_an_album_whose_answer_was_lost_is_sent_from_storage_on_request(chat_factory, bot, emu, workers, settings):
    from botapp.models import GenRequest, Transaction

    settings.TELEGRAM_UPLOAD_TIMEOUT_SECONDS = 1
    chat = chat_factory(first_name="Dan", language_code="en")
    started(chat)
    fund(chat.id, 20)
    emu.lose_answer_next("sendMediaGroup", mode="reset")
    request = deliver_album(chat, variants=2, blocked=0)
    assert all(item.get("outcome") == "unknown" for item in request.results)
    summary = chat.wait(text_has("All 2 variants are ready"), since=0, edits=False)
    assert emu.call_count("sendMediaGroup", chat.id) == 1

    mark = chat.mark()
    chat.press(summary, f"Get result #{request.pk}", lambda m: "✏️ Edit 2" in button_texts(m))
    again = [e.data for e in emu.events("bot_message", chat.id, since=mark) if "photo" in e.data]
    assert len(again) == 2 and again[0]["media_group_id"] == again[1]["media_group_id"]
    with open(settings.MEDIA_ROOT + "/" + request.results[1]["path"], "rb") as fh:
        assert emu.file_bytes(again[1]) == fh.read()  # uploaded from storage
    recorded = eventually(
        lambda: GenRequest.objects.filter(pk=request.pk, results__1__tg_file_id__isnull=False).first()
    )
    assert recorded.results[1]["tg_file_id"] == again[1]["photo"][-1]["file_id"]  # recorded for the buttons
    assert recorded.delivered_at and not Transaction.objects.filter(gen_request=recorded, kind="refund").exists()
