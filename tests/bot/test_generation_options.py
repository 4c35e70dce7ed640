"""The options the capabilities offer, tapped as a user, through the whole chain: the emulator's chat ->
the bot's dispatcher -> the worker's steps (inline, Celery eager) -> the fake Google (the real google-genai
client) -> the delivery back into the chat. Each test asserts the exact fields Google received and what
was charged."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sandbox.telegram import button_texts, sample_image
from tests.bot.conftest import Chat, fund, has_buttons, started, text_has, text_of
from tests.bot.test_generation import balance_of, generate
from tests.generation.conftest import run_to_end

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def confirm_and_generate(chat: Chat, card: dict):
    from botapp.models import GenRequest

    generate(chat, card)
    return GenRequest.objects.get(user__telegram_id=chat.id)


def delivered(chat: Chat, kind: str) -> dict:
    return chat.wait(lambda m: kind in m, edits=False)


def test_nano_banana_2_at_4k_with_photos_and_an_extreme_ratio(chat, worker):
    started(chat)
    fund(chat.id, 10)
    models = chat.press(started(chat), "Создать изображение", text_has("Выберите модель"))
    assert "Nano Banana 2.1 · от 1.5 ток." in button_texts(models)[0]
    options = chat.press(models, "Nano Banana 2.1", has_buttons("4K"))
    assert not any("Pro" in b for b in button_texts(models)), "Nano Banana Pro is added inactive"
    options = chat.press(options, "1:8", has_buttons("✅ 1:8"))
    options = chat.press(options, "4K", has_buttons("✅ 4K"))
    assert "3.38 ток." in text_of(options), "4K costs 1.5 × 2.25"
    chat.press(options, "Фото для редактирования", text_has("Пришлите до 14 фото"))
    chat.user.send_album([sample_image(320, 320), sample_image(330, 300)])
    added = chat.wait(text_has("Фото добавлено: 2 из 14"), edits=False)
    chat.press(added, "Готово", text_has("Опишите изображение"))
    card = chat.send("merge the two cats", text_has("Проверьте и подтвердите"))
    assert "Стоимость: 3.38" in text_of(card) and "Качество: 4K" in text_of(card)
    request = confirm_and_generate(chat, card)
    assert request.price == Decimal("3.38") and balance_of(chat.id) == Decimal("6.62")

    assert run_to_end(request.pk).status == "succeeded"
    sent = worker.last("generateContent")
    assert sent.model == "gemini-nano-banana-2.1"
    assert sent.image_size == "4K" and sent.aspect_ratio == "1:8"
    assert len(sent.input_images) == 2
    assert "merge the two cats" in sent.prompt
    delivered(chat, "photo")


def test_veo_between_two_frames_without_sound_and_with_what_to_avoid(chat, worker):
    started(chat)
    fund(chat.id, 50)
    models = chat.press(started(chat), "Создать видео", text_has("Создание видео"))
    options = chat.press(models, "Veo 3.1 Fast", has_buttons("Далее"))
    options = chat.press(options, "Звук: вкл", has_buttons("Звук: выкл"))
    assert "12.73 ток." in text_of(options), "8 s × 2.375 × 0.67 without sound"
    ask = chat.press(options, "Чего избегать", text_has("Чего не должно быть"))
    options = chat.send("text, watermarks", text_has("Избегать: text, watermarks"))
    assert ask["message_id"] != options["message_id"]
    chat.press(options, "Первый кадр", text_has("с него начнётся видео"))
    chat.user.send_photo(sample_image(640, 360))
    options = chat.wait(text_has("Первый кадр: фото приложено"), edits=False)
    chat.press(options, "Последний кадр", text_has("им видео закончится"))
    chat.user.send_photo(sample_image(660, 370))
    options = chat.wait(text_has("Последний кадр: фото приложено"), edits=False)
    chat.press(options, "Далее", text_has("Опишите видео"))
    card = chat.send("the day turns into night", text_has("Проверьте и подтвердите"))
    assert "Последний кадр: фото приложено" in text_of(card) and "Звук: выкл" in text_of(card)
    request = confirm_and_generate(chat, card)
    assert request.price == Decimal("12.73") and request.negative_prompt == "text, watermarks"
    assert [i["role"] for i in request.input_images] == ["first", "last"]

    done = run_to_end(request.pk)
    assert done.status == "succeeded"
    sent = worker.last("predictLongRunning")
    assert sent.model == "veo-3.1-fast-generate-001"
    assert sent.first_frame is not None and sent.last_frame is not None
    assert sent.first_frame[1] != sent.last_frame[1]
    assert sent.parameters["generateAudio"] is False
    assert sent.parameters["negativePrompt"] == "text, watermarks"
    assert sent.parameters["durationSeconds"] == 8 and sent.parameters["resolution"] == "720p"
    delivered(chat, "video")


def test_veo_with_three_references_in_4k(chat, worker):
    started(chat)
    fund(chat.id, 100)
    models = chat.press(started(chat), "Создать видео", text_has("Создание видео"))
    options = chat.press(models, "Veo 3.1 Fast", has_buttons("Далее"))
    options = chat.press(options, "4K", has_buttons("✅ 4K"))
    assert "38 ток." in text_of(options), "4k: 8 s × 4.75"
    chat.press(options, "Референсы", text_has("до 3 фото героя"))
    chat.user.send_album([sample_image(300 + i, 300) for i in range(4)])
    assert chat.wait(text_has("Слишком много референсов: максимум 3"), edits=False)
    options = chat.wait(text_has("Референсы: 3 из 3"), edits=False)
    chat.press(options, "Далее", text_has("Опишите видео"))
    card = chat.send("the hero walks through the market", text_has("Проверьте и подтвердите"))
    request = confirm_and_generate(chat, card)
    assert request.price == Decimal("38.00")
    assert [i["role"] for i in request.input_images] == ["reference"] * 3

    assert run_to_end(request.pk).status == "succeeded"
    sent = worker.last("predictLongRunning")
    assert len(sent.reference_images) == 3 and {r[2] for r in sent.reference_images} == {"ASSET"}
    assert sent.first_frame is None and sent.last_frame is None
    assert sent.parameters["resolution"] == "4k" and sent.parameters["durationSeconds"] == 8


def test_a_last_frame_without_a_first_is_refused_before_any_charge(chat, worker):
    from botapp.models import GenRequest

    started(chat)
    fund(chat.id, 50)
    models = chat.press(started(chat), "Создать видео", text_has("Создание видео"))
    options = chat.press(models, "Veo 3.1 Fast", has_buttons("Далее"))
    chat.press(options, "Последний кадр", text_has("им видео закончится"))
    chat.user.send_photo(sample_image(640, 360))
    options = chat.wait(text_has("Последний кадр: фото приложено"), edits=False)
    chat.press(options, "Далее", text_has("Опишите видео"))
    refused = chat.send("a sunset", text_has("Для последнего кадра нужен первый"))
    assert has_buttons("Первый кадр")(refused), "back on the options, to add the first frame"
    assert not any("Создать" in b for b in button_texts(refused))
    assert GenRequest.objects.count() == 0 and balance_of(chat.id) == Decimal("50")


def test_four_and_eight_seconds_cost_differently(chat, worker):
    started(chat)
    fund(chat.id, 50)
    models = chat.press(started(chat), "Создать видео", text_has("Создание видео"))
    options = chat.press(models, "Veo 3.1 Fast", has_buttons("Далее"))
    options = chat.press(options, "4 с", has_buttons("✅ 4 с"))
    chat.press(options, "Далее", text_has("Опишите видео"))
    card = chat.send("waves", text_has("Проверьте и подтвердите"))
    assert "Стоимость: 9.5" in text_of(card)
    request = confirm_and_generate(chat, card)
    assert request.price == Decimal("9.50") and balance_of(chat.id) == Decimal("40.50")
    assert run_to_end(request.pk).status == "succeeded"
    assert worker.last("predictLongRunning").parameters["durationSeconds"] == 4


def test_extend_a_delivered_video_with_a_new_prompt(chat, worker):
    from botapp.models import GenRequest

    started(chat)
    fund(chat.id, 60)
    models = chat.press(started(chat), "Создать видео", text_has("Создание видео"))
    options = chat.press(models, "Veo 3.1 Fast", has_buttons("Далее"))
    chat.press(options, "Далее", text_has("Опишите видео"))
    card = chat.send("a paper boat on a stream", text_has("Проверьте и подтвердите"))
    first = confirm_and_generate(chat, card)
    assert run_to_end(first.pk).status == "succeeded"
    video = chat.wait(lambda m: "video" in m and has_buttons("Продолжить видео")(m), edits=False)
    first_bytes = worker.video_bytes("16:9")

    prompt_ask = chat.press(video, "Продолжить видео", text_has("Продолжение видео"))
    card = chat.send("the boat reaches the sea", text_has("Проверьте и подтвердите"))
    assert f"Продолжение видео #{first.pk} (+7 с)" in text_of(card) and prompt_ask
    assert "Стоимость: 16.63" in text_of(card), "7 s × 2.375"
    generate(chat, card)
    extension = GenRequest.objects.exclude(pk=first.pk).get(user__telegram_id=chat.id)
    assert extension.params["extend_from"] == first.pk and extension.price == Decimal("16.63")
    assert balance_of(chat.id) == Decimal("60") - Decimal("19") - Decimal("16.63")

    assert run_to_end(extension.pk).status == "succeeded"
    sent = worker.last("predictLongRunning")
    assert sent.source_video is not None and sent.source_video[1] == first_bytes
    assert sent.first_frame is None and sent.parameters["resolution"] == "720p"
    assert "extend_from" not in sent.parameters
    assert "the boat reaches the sea" in sent.prompt
    chat.wait(lambda m: "video" in m, edits=False)


def test_extending_a_video_that_is_not_ours_is_refused(chat, worker):
    from botapp.callbacks import ResultAction, ResultCb
    from sandbox.telegram import inline_buttons

    started(chat)
    fund(chat.id, 60)
    menu = started(chat)
    forged = ResultCb(action=ResultAction.EXTEND, request_id=999999).pack()
    answer = chat.press_expect_answer(menu, data=forged)
    assert answer["text"], "a clear answer, not silence"
    assert inline_buttons(chat.current(menu)), "nothing changed"
    assert balance_of(chat.id) == Decimal("60")


def test_four_variants_with_one_blocked_tapped_as_a_user(chat, worker):
    from botapp.models import Transaction
    from sandbox.google import Scenario

    started(chat)
    fund(chat.id, 20)
    models = chat.press(started(chat), "Создать изображение", text_has("Выберите модель"))
    options = chat.press(models, "Nano Banana 2.1", has_buttons("×4"))
    options = chat.press(options, "×4", has_buttons("✅ ×4"))
    assert "Вариантов: 4" in text_of(options) and "6 ток." in text_of(options), "1.50 × 4"
    chat.press(options, "Далее", text_has("Опишите изображение"))
    card = chat.send("four owls at night", text_has("Проверьте и подтвердите"))
    assert "Стоимость: 6" in text_of(card)
    request = confirm_and_generate(chat, card)
    assert (request.variants, request.price) == (4, Decimal("6.00"))
    worker.queue_scenarios("gemini-nano-banana-2.1", [None, Scenario.safety(), None, None])

    done = run_to_end(request.pk)
    assert done.status == "succeeded" and done.refunded_variants == 1
    assert len(worker.requests_for("generateContent")) == 4, "one call per variant"
    photos = [m for m in chat.emu.messages(chat.id) if "photo" in m]
    assert len(photos) == 3 and len({p.get("media_group_id") for p in photos}) == 1, "one album of the three"
    buttons = chat.wait(has_buttons("1"), edits=False)
    assert buttons
    refunds = Transaction.objects.filter(gen_request=request, kind="refund")
    assert [r.operation_key for r in refunds] == [request.partial_refund_key]
    assert balance_of(chat.id) == Decimal("20") - Decimal("6") + Decimal("1.50")
