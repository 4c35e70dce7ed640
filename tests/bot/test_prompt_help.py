"""Help with the prompt through the Bot API emulator: 🎨 styles on the options screen (the final prompt on the
card and in the request, a style turned off while choosing, a prompt too long with its style, example
images) and ✨ Improve with the offline rewrite (no Google credentials): accept, edit, keep mine, blocked,
the hourly limit, the price charged with the generation. The rewrite through the fake Google and a real
worker is tests/generation/test_prompt_help_e2e.py."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from PIL import Image

from sandbox.telegram import button_texts
from tests.bot.conftest import Chat, fund, has_buttons, started, text_has, text_of

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

MENU_ONLY = ["🏠 Меню"]
D = Decimal


@pytest.fixture(autouse=True)
def _offline(settings):
    """No Google credentials: the demo rewrite; a clean hourly counter and style cache."""
    from botapp.services import styles

    settings.GOOGLE_API_KEY = settings.GOOGLE_VERTEX_API_KEY = settings.GOOGLE_CLOUD_PROJECT = ""
    settings.GENERATION_PROVIDER_MODE = "auto"
    settings.GENERATION_ALLOW_DEMO = True
    settings.PROMPT_IMPROVE_ENABLED = True
    settings.PROMPT_IMPROVE_PRICE = D("0")
    settings.PROMPT_IMPROVE_PER_HOUR = 20
    cache.clear()
    styles.clear_cache()
    yield
    styles.clear_cache()


def make_style(**kw):
    from botapp.models import PromptStyle
    from botapp.services import styles

    kw.setdefault("name", "Акварель")
    kw.setdefault("name_en", "Watercolour")
    kw.setdefault("emoji", "🎨")
    kw.setdefault("prompt_template", "{prompt}, watercolour painting")
    style = PromptStyle.objects.create(**kw)
    styles.clear_cache()
    return style


def image_options(chat: Chat) -> dict:
    menu = started(chat)
    models = chat.press(menu, "Создать изображение", text_has("Выберите модель"))
    return chat.press(models, "Nano Banana 2.1", has_buttons("Далее"))


def confirmation(chat: Chat, prompt: str, options: dict | None = None) -> dict:
    ask = chat.press(options or image_options(chat), "Далее", text_has("Опишите изображение"))
    assert ask["message_id"]
    return chat.send(prompt, text_has("Проверьте и подтвердите"))


def generate(chat: Chat, card: dict) -> dict:
    chat.press(card, "Создать", text_has("очеред"))
    return chat.wait(lambda m: m["message_id"] == card["message_id"] and button_texts(m) == MENU_ONLY)


def balance_of(telegram_id: int) -> Decimal:
    from botapp.models import UserBalance

    return UserBalance.objects.get(user__telegram_id=telegram_id).total


# --- styles ------------------------------------------------------------------------------------------------
def test_no_style_button_without_styles(chat):
    started(chat)
    assert not any("Стиль" in b for b in button_texts(image_options(chat)))


def test_a_style_wraps_the_description_and_the_card_shows_the_final_prompt(chat):
    from botapp.models import GenRequest, Transaction

    style = make_style()
    make_style(name="Только видео", name_en="Video only", applies_to="video")
    started(chat)
    fund(chat.id, 10)
    options = image_options(chat)
    listing = chat.press(options, "🎨 Стиль: нет", text_has("Выберите стиль"))
    assert "🎨 Акварель" in button_texts(listing) and "✅ 🚫 Без стиля" in button_texts(listing)
    assert not any("Только видео" in b for b in button_texts(listing)), "a video style is not offered for images"
    options = chat.press(listing, "Акварель", has_buttons("🎨 Стиль: 🎨 Акварель"))
    card = confirmation(chat, "a fox <in> the snow", options)
    text = text_of(card)
    assert "Стиль: 🎨 Акварель" in text
    assert "Итоговый промпт: a fox <in> the snow, watercolour painting" in text
    generate(chat, card)
    request = GenRequest.objects.get(user__telegram_id=chat.id)
    assert request.prompt == "a fox <in> the snow, watercolour painting"
    assert request.user_prompt == "a fox <in> the snow" and request.style_id == style.pk
    assert Transaction.objects.filter(gen_request=request, kind="charge").count() == 1
    assert balance_of(chat.id) == D("8.50")


def test_no_style_after_a_style(chat):
    make_style()
    started(chat)
    options = image_options(chat)
    listing = chat.press(options, "🎨 Стиль", text_has("Выберите стиль"))
    options = chat.press(listing, "Акварель", has_buttons("🎨 Стиль: 🎨 Акварель"))
    listing = chat.press(options, "🎨 Стиль", text_has("Выберите стиль"))
    assert "✅ 🎨 Акварель" in button_texts(listing)
    options = chat.press(listing, "Без стиля", has_buttons("🎨 Стиль: нет"))
    card = confirmation(chat, "a fox", options)
    assert "Описание: a fox" in text_of(card) and "watercolour" not in text_of(card)


def test_a_style_turned_off_while_choosing_is_refused_at_generate(chat):
    from botapp.models import GenRequest, PromptStyle

    style = make_style()
    started(chat)
    fund(chat.id, 10)
    options = image_options(chat)
    listing = chat.press(options, "🎨 Стиль", text_has("Выберите стиль"))
    options = chat.press(listing, "Акварель", has_buttons("🎨 Стиль: 🎨 Акварель"))
    card = confirmation(chat, "a fox", options)
    PromptStyle.objects.filter(pk=style.pk).update(is_active=False)  # the operator, meanwhile
    chat.press(card, "Создать", text_has("стиль больше недоступен"))
    back = chat.wait(lambda m: m["message_id"] == card["message_id"] and "Далее" in " ".join(button_texts(m)))
    assert not any("Акварель" in b for b in button_texts(back)), "back on the options, without the style"
    assert not GenRequest.objects.exists()
    assert balance_of(chat.id) == D(10)


def test_a_style_turned_off_before_the_card_sends_back_to_the_options(chat):
    from botapp.models import PromptStyle
    from botapp.services import styles

    style = make_style()
    make_style(name="Другой", name_en="Other")  # another one stays: the button stays
    started(chat)
    options = image_options(chat)
    listing = chat.press(options, "🎨 Стиль", text_has("Выберите стиль"))
    options = chat.press(listing, "Акварель", has_buttons("🎨 Стиль: 🎨 Акварель"))
    chat.press(options, "Далее", text_has("Опишите изображение"))
    PromptStyle.objects.filter(pk=style.pk).update(is_active=False)
    styles.clear_cache()
    back = chat.send("a fox", text_has("стиль больше недоступен"))
    assert "🎨 Стиль: нет" in button_texts(back)


def test_too_long_with_the_style_asks_to_shorten_before_any_charge(chat):
    from botapp.models import AIModel, GenRequest

    make_style(prompt_template="{prompt}, watercolour painting")  # adds 22 characters
    limit = AIModel.objects.get(slug="nano-banana-2-1").max_prompt_length
    started(chat)
    fund(chat.id, 10)
    options = image_options(chat)
    listing = chat.press(options, "🎨 Стиль", text_has("Выберите стиль"))
    options = chat.press(listing, "Акварель", has_buttons("🎨 Стиль: 🎨 Акварель"))
    chat.press(options, "Далее", text_has("Опишите изображение"))
    long = "x" * (limit - 10)
    ask = chat.send(long, text_has("Со стилем"))
    assert f"{limit - 10 + 22} символов" in text_of(ask) and f"не больше {limit}" in text_of(ask)
    assert "Создать" not in " ".join(button_texts(ask))
    assert not GenRequest.objects.exists()
    card = chat.send("a fox", text_has("Проверьте и подтвердите"))
    generate(chat, card)
    assert GenRequest.objects.get().prompt == "a fox, watercolour painting"


def test_a_style_example_is_sent_then_reused_by_file_id(chat, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 90, 200)).save(buffer, format="PNG")
    style = make_style()
    style.example_image.save("watercolour.png", ContentFile(buffer.getvalue()))
    started(chat)
    listing = chat.press(image_options(chat), "🎨 Стиль", text_has("Выберите стиль"))
    first = chat.press(listing, "🖼", lambda m: "photo" in m)
    assert "Акварель: пример этого стиля" in text_of(first)
    assert chat.emu.file_bytes(first) == buffer.getvalue()
    second = chat.press(listing, "🖼", lambda m: "photo" in m and m["message_id"] != first["message_id"])
    assert second["photo"][-1]["file_id"] == first["photo"][-1]["file_id"], "the second time by file_id"
    # The list under the photos is still the live card.
    chat.press(listing, "Акварель", has_buttons("🎨 Стиль: 🎨 Акварель"))


# --- ✨ improve (the offline rewrite) ----------------------------------------------------------------------
def improve(chat: Chat, card: dict) -> dict:
    return chat.press(card, "✨ Улучшить", text_has("Улучшенное описание"))


def test_improve_accept_then_generate_charges_the_rewrite_with_the_generation(chat, settings):
    from botapp.models import GenRequest, Transaction

    settings.PROMPT_IMPROVE_PRICE = D("0.5")
    started(chat)
    fund(chat.id, 10)
    card = confirmation(chat, "a fox in the snow")
    suggestion = improve(chat, card)
    text = text_of(suggestion)
    assert "Объект: a fox in the snow. Окружение:" in text and "Камера:" in text
    assert "Ваше: a fox in the snow" in text and "0.5 ток." in text and "ДЕМО" in text
    assert {"✅ Принять", "✏️ Изменить", "↩️ Оставить своё"} <= set(button_texts(suggestion))
    assert balance_of(chat.id) == D(10), "nothing is charged by a rewrite"
    card = chat.press(suggestion, "Принять", text_has("Проверьте и подтвердите"))
    text = text_of(card)
    assert "Описание: Объект: a fox in the snow." in text
    assert "✨ Улучшенное описание: 0.5 ток." in text and "10 → 8 ток." in text
    assert "🚀 Создать · 2 ток." in button_texts(card)
    generate(chat, card)
    request = GenRequest.objects.get()
    assert request.prompt.startswith("Объект: a fox in the snow.") and request.price == D("1.50")
    rows = Transaction.objects.filter(gen_request=request, kind="charge").order_by("id")
    assert [r.operation_key for r in rows] == [request.charge_key, f"gen:{request.pk}:improve"]
    assert balance_of(chat.id) == D("8.00")


def test_improve_edit_sends_your_own_version(chat, settings):
    from botapp.models import GenRequest, Transaction

    settings.PROMPT_IMPROVE_PRICE = D("0.5")
    started(chat)
    fund(chat.id, 10)
    suggestion = improve(chat, confirmation(chat, "a fox"))
    ask = chat.press(suggestion, "Изменить", text_has("Пришлите свой вариант"))
    assert "Объект: a fox." in text_of(ask)
    card = chat.send("a red fox, my words", text_has("Проверьте и подтвердите"))
    assert "Описание: a red fox, my words" in text_of(card) and "Улучшенное описание" not in text_of(card)
    generate(chat, card)
    request = GenRequest.objects.get()
    assert request.prompt == "a red fox, my words"
    assert Transaction.objects.filter(gen_request=request, kind="charge").count() == 1, "own text: no fee"
    assert balance_of(chat.id) == D("8.50")


def test_improve_keep_mine(chat):
    started(chat)
    fund(chat.id, 10)
    suggestion = improve(chat, confirmation(chat, "a fox"))
    card = chat.press(suggestion, "Оставить своё", text_has("Проверьте и подтвердите"))
    assert "Описание: a fox" in text_of(card) and "Объект" not in text_of(card)


def test_improve_from_the_prompt_card(chat):
    started(chat)
    fund(chat.id, 10)
    card = confirmation(chat, "a fox")
    ask = chat.press(card, "Изменить описание", text_has("Текущее описание"))
    assert "✨ Улучшить" in button_texts(ask)
    suggestion = improve(chat, ask)
    card = chat.press(suggestion, "Принять", text_has("Проверьте и подтвердите"))
    assert "Объект: a fox." in text_of(card)


def test_a_blocked_rewrite_keeps_your_text(chat):
    from botapp.models import GenRequest

    started(chat)
    fund(chat.id, 10)
    card = confirmation(chat, "a fox [[safety]]")
    blocked = chat.press(card, "✨ Улучшить", text_has("заблокировал"))
    assert "Ничего не списано" in text_of(blocked) and "a fox [[safety]]" in text_of(blocked)
    card = chat.press(blocked, "Оставить своё", text_has("Проверьте и подтвердите"))
    assert "Описание: a fox [[safety]]" in text_of(card)
    assert not GenRequest.objects.exists() and balance_of(chat.id) == D(10)


def test_the_hourly_limit(chat, settings):
    settings.PROMPT_IMPROVE_PER_HOUR = 1
    started(chat)
    fund(chat.id, 10)
    suggestion = improve(chat, confirmation(chat, "a fox"))
    card = chat.press(suggestion, "Оставить своё", text_has("Проверьте и подтвердите"))
    answer = chat.press_expect_answer(card, "✨ Улучшить")
    assert "1 улучшений" in answer["text"] and answer.get("show_alert")
    assert text_of(chat.current(card)) == text_of(card), "the card stays"


def test_no_improve_button_when_switched_off(chat, settings):
    settings.PROMPT_IMPROVE_ENABLED = False
    started(chat)
    fund(chat.id, 10)
    card = confirmation(chat, "a fox")
    assert any("Создать" in b for b in button_texts(card))
    assert not any("Улучшить" in b for b in button_texts(card))
