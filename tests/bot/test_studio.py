"""The studio's options tapped as a user, through the whole chain: the emulator's chat -> the bot's dispatcher ->
the worker's steps (inline) -> the fake Google (the real google-genai client) -> the delivery back into the chat.
Nano Banana 2.1's thinking level; ⚡ Draft then 🎬 Render in full; what is refused before a charge."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sandbox.telegram import button_texts
from tests.bot.conftest import fund, has_buttons, latest_request, started, text_has, text_of
from tests.bot.test_generation import balance_of, generate
from tests.generation.conftest import run_to_end

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def image_models(chat) -> dict:
    return chat.press(started(chat), "Создать изображение", text_has("Выберите модель"))


def test_nano_banana_2_1_at_4k_with_a_thinking_level(chat, worker):
    started(chat)
    fund(chat.id, 10)
    models = image_models(chat)
    names = button_texts(models)
    assert names[0].startswith("🍌 Nano Banana 2.1") and any("Nano Banana 2 Lite" in n for n in names)
    assert not any(n.startswith("🍌 Nano Banana 2 ·") for n in names), "the retired Nano Banana 2 is not offered"
    options = chat.press(models, "Nano Banana 2.1", has_buttons("✅ 🧠 Средне"))
    options = chat.press(options, "Глубоко", has_buttons("✅ 🧠 Глубоко"))
    options = chat.press(options, "4K", has_buttons("✅ 4K"))
    chat.press(options, "Далее", text_has("Опишите изображение"))
    card = chat.send("a lighthouse in a storm", text_has("Проверьте и подтвердите"))
    assert "🧠 Обдумывание: глубоко" in text_of(card) and "Стоимость: 3.38" in text_of(card)
    generate(chat, card)
    request = latest_request(chat.id)
    assert request.params["thinking_level"] == "high" and request.price == Decimal("3.38")

    assert run_to_end(request.pk).status == "succeeded"
    sent = worker.last("generateContent")
    assert sent.model == "gemini-nano-banana-2.1" and sent.image_size == "4K"
    thinking = sent.generation_config["thinkingConfig"]  # google-genai 3.6.1 sends the snake_case name here
    assert (thinking.get("thinkingLevel") or thinking.get("thinking_level")) == "HIGH"
    assert chat.wait(lambda m: "photo" in m, edits=False)


def test_a_draft_then_render_in_full(chat, worker):
    started(chat)
    fund(chat.id, 10)
    options = chat.press(image_models(chat), "Nano Banana 2.1", has_buttons("Сначала черновик: нет"))
    options = chat.press(options, "4K", has_buttons("✅ 4K"))
    options = chat.press(options, "Сначала черновик", has_buttons("Сначала черновик: да"))
    assert not any(b.startswith(("×", "✅ ×")) for b in button_texts(options)), "a draft is one variant"
    chat.press(options, "Далее", text_has("Опишите изображение"))
    card = chat.send("a red fox in the snow", text_has("Проверьте и подтвердите"))
    text = text_of(card)
    assert "Nano Banana 2 Lite" in text and "Стоимость: 0.75" in text, "the draft's price"
    assert "Nano Banana 2.1 4K за 3.38" in text, "and the full render's"
    generate(chat, card)
    draft = latest_request(chat.id)
    assert draft.ai_model.slug == "nano-banana-2-lite" and draft.price == Decimal("0.75")
    seed = draft.params["seed"]
    assert draft.params["resolution"] == "1K" and draft.params["draft"]["full_params"]["resolution"] == "4K"

    assert run_to_end(draft.pk).status == "succeeded"
    sent = worker.last("generateContent")
    assert sent.model == "gemini-3.1-flash-lite-image" and sent.image_size == "1K"
    assert sent.generation_config["seed"] == seed and "thinkingConfig" not in sent.generation_config
    photo = chat.wait(lambda m: "photo" in m and has_buttons("Сделать в полном качестве")(m), edits=False)

    card = chat.press(photo, "Сделать в полном качестве", text_has("Проверьте и подтвердите"))
    assert "Стоимость: 3.38" in text_of(card) and "Качество: 4K" in text_of(card)
    generate(chat, card)
    full = latest_request(chat.id)
    assert full.pk != draft.pk and full.ai_model.slug == "nano-banana-2-1"
    assert (full.prompt, full.params["seed"], full.params["resolution"]) == ("a red fox in the snow", seed, "4K")
    assert "draft" not in full.params and full.price == Decimal("3.38")
    assert run_to_end(full.pk).status == "succeeded"
    sent = worker.last("generateContent")
    assert sent.model == "gemini-nano-banana-2.1" and sent.image_size == "4K"
    assert sent.generation_config["seed"] == seed and sent.prompt.startswith("a red fox in the snow")
    assert balance_of(chat.id) == Decimal("10") - Decimal("0.75") - Decimal("3.38")


def test_render_in_full_after_its_model_was_retired_is_refused_before_a_charge(chat, worker):
    from botapp.models import AIModel

    started(chat)
    fund(chat.id, 10)
    options = chat.press(image_models(chat), "Nano Banana 2.1", has_buttons("Сначала черновик: нет"))
    options = chat.press(options, "Сначала черновик", has_buttons("Сначала черновик: да"))
    chat.press(options, "Далее", text_has("Опишите изображение"))
    generate(chat, chat.send("a blue bird", text_has("Проверьте и подтвердите")))
    draft = latest_request(chat.id)
    assert run_to_end(draft.pk).status == "succeeded"
    photo = chat.wait(lambda m: "photo" in m and has_buttons("Сделать в полном качестве")(m), edits=False)

    from botapp.selectors.catalogue import clear_caches

    AIModel.objects.filter(slug="nano-banana-2-1").update(is_active=False, status="retired")
    clear_caches()  # the bot's cached catalogue (the admin stamps a change; the test does not wait for it)
    before = balance_of(chat.id)
    answer = chat.press_expect_answer(photo, "Сделать в полном качестве")
    assert "Полное качество недоступно" in answer["text"] and answer["show_alert"]
    assert latest_request(chat.id).pk == draft.pk and balance_of(chat.id) == before


def test_a_forged_edit_of_someone_elses_video_is_refused_before_a_charge(chat, worker):
    """The service refuses `edit_of` of a clip that is not the user's (or not an Omni clip), charging nothing."""
    from botapp.models import AIModel, GenRequest, TgUser
    from botapp.services.exceptions import CannotEditVideo
    from botapp.services.generation import GenerationService

    started(chat)
    fund(chat.id, 50)
    me = TgUser.objects.get(telegram_id=chat.id)
    other = TgUser.objects.create(telegram_id=777_000_123, first_name="Eve")
    omni = AIModel.objects.get(slug="gemini-omni-flash")
    veo = AIModel.objects.get(slug="veo-3-1-fast")
    theirs = GenRequest.objects.create(
        user=other, ai_model=omni, model=omni.slug, kind="video", prompt="x", price=0, status="succeeded",
        provider_operation_id="int-theirs", delivered_at="2026-12-07T10:00:00Z",
        results=[{"kind": "video", "path": "x.mp4", "duration": 8}],
    )
    veo_clip = GenRequest.objects.create(
        user=me, ai_model=veo, model=veo.slug, kind="video", prompt="x", price=0, status="succeeded",
        provider_operation_id="projects/p/operations/1", delivered_at="2026-12-07T10:00:00Z",
        results=[{"kind": "video", "path": "y.mp4", "duration": 8}],
    )
    for source in (theirs, veo_clip):
        with pytest.raises(CannotEditVideo):
            GenerationService.create_request(
                user_id=me.pk, ai_model_id=omni.pk, prompt="make it night", params={"edit_of": source.pk}
            )
    assert balance_of(chat.id) == Decimal("50")
    assert not GenRequest.objects.filter(user=me, ai_model=omni).exists()
