"""Gemini Omni Flash tapped as a user, through the whole chain: the emulator's chat -> the bot's dispatcher ->
the worker's steps (inline) -> the fake Google's Interactions API (the real google-genai client) -> the clip
delivered back into the chat. Each test asserts what Google received and what was charged: six references at
1080p, a clip edited twice by conversation, an extension, a draft then Render in full, and an edit whose
interaction Google has forgotten (refunded once, with its own message)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sandbox.google import FakeGoogleServer
from sandbox.telegram import button_texts, sample_image
from tests.bot.conftest import Chat, fund, has_buttons, latest_request, started, text_has, text_of
from tests.bot.test_generation import balance_of, generate
from tests.generation.conftest import run_to_end

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

OMNI = "gemini-omni-1.2-flash"


def omni_options(chat: Chat) -> dict:
    models = chat.press(started(chat), "Создать видео", text_has("Создание видео"))
    assert button_texts(models)[0].startswith("🌀 Gemini Omni Flash"), "Google's default video model comes first"
    return chat.press(models, "Gemini Omni Flash", has_buttons("Далее"))


def make_clip(chat: Chat, worker: FakeGoogleServer, prompt: str = "a red car on a coast road") -> tuple[object, dict]:
    """A default Omni clip (720p, 8 s, 8 tokens), delivered; returns the request and the video message."""
    options = omni_options(chat)
    chat.press(options, "Далее", text_has("Опишите видео"))
    generate(chat, chat.send(prompt, text_has("Проверьте и подтвердите")))
    request = latest_request(chat.id)
    assert run_to_end(request.pk).status == "succeeded"
    request.refresh_from_db()
    video = chat.wait(lambda m: "video" in m and f":{request.pk}:" in str(m.get("reply_markup")), edits=False)
    return request, video


def test_an_omni_clip_with_six_references_at_1080p(chat, worker):
    started(chat)
    fund(chat.id, 50)
    options = omni_options(chat)
    options = chat.press(options, "1080p", has_buttons("✅ 1080p"))
    assert "14 ток." in text_of(options), "1080p: 8 s × 1.75"
    chat.press(options, "Референсы", text_has("до 6 фото героя"))
    chat.user.send_album([sample_image(300 + i, 300) for i in range(6)])
    options = chat.wait(text_has("Референсы: 6 из 6"), edits=False)
    chat.press(options, "Далее", text_has("Опишите видео"))
    card = chat.send('the heroes meet and she says "hello"', text_has("Проверьте и подтвердите"))
    generate(chat, card)
    request = latest_request(chat.id)
    assert request.price == Decimal("14.00") and [i["role"] for i in request.input_images] == ["reference"] * 6

    assert run_to_end(request.pk).status == "succeeded"
    sent = worker.last("createInteraction")
    assert sent.model == OMNI and sent.video_task == "reference_to_video"
    assert sent.response_format["resolution"] == "1080p" and sent.response_format["duration"] == "8s"
    assert sent.response_format["aspect_ratio"] == "16:9"
    assert len([b for b in sent.content if b.get("type") == "image"]) == 6
    assert '"hello"' in sent.prompt and sent.previous_interaction_id is None
    assert chat.wait(lambda m: "video" in m, edits=False)
    assert balance_of(chat.id) == Decimal("36")


def test_an_omni_clip_edited_twice_by_conversation(chat, worker):
    started(chat)
    fund(chat.id, 30)
    first, video = make_clip(chat, worker)
    assert has_buttons("Изменить это видео")(video)

    ask = chat.press(video, "Изменить это видео", text_has("Изменить видео"))
    card = chat.send("make it night", text_has("Проверьте и подтвердите"))
    assert ask and f"Меняет видео #{first.pk}" in text_of(card) and "Стоимость: 8" in text_of(card)
    generate(chat, card)
    second = latest_request(chat.id)
    assert second.params["edit_of"] == first.pk and second.price == Decimal("8.00")
    assert run_to_end(second.pk).status == "succeeded"
    second.refresh_from_db()
    sent = worker.last("createInteraction")
    assert sent.previous_interaction_id == first.provider_operation_id.removeprefix("interactions/")
    assert sent.prompt == "make it night" and sent.video_task == "edit"
    video = chat.wait(lambda m: "video" in m and f":{second.pk}:" in str(m.get("reply_markup")), edits=False)

    chat.press(video, "Изменить это видео", text_has("Изменить видео"))
    generate(chat, chat.send("swap the car for a bike", text_has("Проверьте и подтвердите")))
    third = latest_request(chat.id)
    assert third.params["edit_of"] == second.pk
    assert run_to_end(third.pk).status == "succeeded"
    sent = worker.last("createInteraction")
    assert sent.previous_interaction_id == second.provider_operation_id.removeprefix("interactions/")
    assert sent.prompt == "swap the car for a bike"
    assert chat.wait(lambda m: "video" in m and f":{third.pk}:" in str(m.get("reply_markup")), edits=False)
    assert balance_of(chat.id) == Decimal("6"), "three turns, each charged as its own generation"


def test_an_omni_extension(chat, worker):
    started(chat)
    fund(chat.id, 30)
    first, video = make_clip(chat, worker)
    chat.press(video, "Продолжить видео", text_has("Продолжение видео"))
    card = chat.send("the car drives into the sunset", text_has("Проверьте и подтвердите"))
    assert "+5 с" in text_of(card) and "Стоимость: 5" in text_of(card), "5 s at the clip's 720p"
    generate(chat, card)
    extension = latest_request(chat.id)
    assert extension.params["extend_from"] == first.pk and extension.params["resolution"] == "720p"
    assert run_to_end(extension.pk).status == "succeeded"
    sent = worker.last("createInteraction")
    assert sent.video_task == "extend" and sent.source_video is not None
    assert sent.response_format["duration"] == "5s" and sent.response_format["resolution"] == "720p"
    assert chat.wait(lambda m: "video" in m and f":{extension.pk}:" in str(m.get("reply_markup")), edits=False)


def test_an_extension_past_the_longest_clip_is_refused_before_a_charge(chat, worker):
    from botapp.models import GenRequest

    started(chat)
    fund(chat.id, 30)
    first, video = make_clip(chat, worker)
    GenRequest.objects.filter(pk=first.pk).update(results=[{**first.results[0], "duration": 28.0}])
    chat.press(video, "Продолжить видео", text_has("Продолжение видео"))
    refused = chat.send("and on", text_has("не длиннее 30 с"))
    assert refused and latest_request(chat.id).pk == first.pk and balance_of(chat.id) == Decimal("22")


def test_an_omni_draft_then_render_in_full(chat, worker):
    started(chat)
    fund(chat.id, 30)
    options = omni_options(chat)
    options = chat.press(options, "Сначала черновик", has_buttons("Сначала черновик: да"))
    chat.press(options, "Далее", text_has("Опишите видео"))
    card = chat.send("a paper boat in the rain", text_has("Проверьте и подтвердите"))
    assert "Стоимость: 2.8" in text_of(card) and "720p за 8" in text_of(card), "both prices"
    generate(chat, card)
    draft = latest_request(chat.id)
    assert draft.ai_model.slug == "gemini-omni-flash" and draft.params["resolution"] == "360p"
    assert run_to_end(draft.pk).status == "succeeded"
    sent = worker.last("createInteraction")
    seed = draft.params["seed"]
    assert sent.response_format["resolution"] == "360p" and sent.generation_config["seed"] == seed
    video = chat.wait(lambda m: "video" in m and has_buttons("Сделать в полном качестве")(m), edits=False)

    card = chat.press(video, "Сделать в полном качестве", text_has("Проверьте и подтвердите"))
    assert "Стоимость: 8" in text_of(card)
    generate(chat, card)
    full = latest_request(chat.id)
    assert full.params["resolution"] == "720p" and full.params["seed"] == seed and "draft" not in full.params
    assert run_to_end(full.pk).status == "succeeded"
    sent = worker.last("createInteraction")
    assert sent.response_format["resolution"] == "720p" and sent.generation_config["seed"] == seed
    assert sent.prompt == "a paper boat in the rain"
    assert balance_of(chat.id) == Decimal("30") - Decimal("2.80") - Decimal("8")


def test_an_edit_whose_interaction_google_forgot_is_refunded_once(chat, worker):
    from botapp.models import Transaction

    started(chat)
    fund(chat.id, 30)
    first, video = make_clip(chat, worker)
    worker.forget_interaction(first.provider_operation_id.removeprefix("interactions/"))
    chat.press(video, "Изменить это видео", text_has("Изменить видео"))
    generate(chat, chat.send("make it snow", text_has("Проверьте и подтвердите")))
    edit = latest_request(chat.id)
    assert run_to_end(edit.pk).status == "failed" and edit.price == Decimal("8.00")
    edit.refresh_from_db()
    assert edit.error_code == "interaction_not_found" and edit.refunded_at is not None
    assert chat.wait(text_has("больше не помнит это видео"), edits=False)
    assert Transaction.objects.filter(gen_request=edit, kind="refund").count() == 1
    assert run_to_end(edit.pk).status == "failed"  # again: nothing more
    assert Transaction.objects.filter(gen_request=edit, kind="refund").count() == 1
    assert balance_of(chat.id) == Decimal("22")
