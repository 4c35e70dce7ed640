"""Styles and ✨ Improve end to end: a user taps through the Bot API emulator (the real aiogram bot of
this process), the bot asks the fake Google's text model (the real google-genai SDK), the user accepts
or edits, and the REAL Celery worker generates the image with the final prompt and delivers it.

    user -> emulator -> bot -> google-genai -> fake Google (text model: "Improved: " + the text)
    bot -> create_request (charged) -> broker -> worker -> fake Google (image) -> emulator -> user
"""

from __future__ import annotations

import os
import time
import uuid
from decimal import Decimal

import pytest
from django.core.cache import cache

from botapp.models import GenRequest, PromptStyle, Transaction, UserBalance
from sandbox.telegram import button_texts
from tests.bot.conftest import BotRunner, Chat, _redis_cleanup, fund, has_buttons, started, text_has, text_of

from .conftest import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
D = Decimal
TEXT_MODEL = "gemini-3.5-flash-lite"


@pytest.fixture
def chat(stack, emulator, fake_google, settings):
    """The bot of this process polling the session's emulator (the worker sends there too), with the
    fake Google for the text model, the real worker behind the queue."""
    from botapp import bridge
    from botapp.services import styles

    settings.THROTTLE_RATE = 0
    settings.GOOGLE_API_KEY = "test-gemini-key"
    settings.GOOGLE_VERTEX_API_KEY = settings.GOOGLE_CLOUD_PROJECT = ""
    settings.GOOGLE_GENAI_USE_VERTEXAI = False
    settings.GOOGLE_GEMINI_BASE_URL = settings.GOOGLE_VERTEX_BASE_URL = fake_google.base_url
    settings.GENERATION_PROVIDER_MODE = "google"
    settings.PROMPT_IMPROVE_ENABLED = True
    settings.PROMPT_IMPROVE_MODEL = TEXT_MODEL
    settings.PROMPT_IMPROVE_PRICE = D("0.5")
    settings.PROMPT_IMPROVE_PER_HOUR = 20
    cache.clear()
    bridge.clear_caches()
    styles.clear_cache()
    redis_url, prefix = os.environ.get("REDIS_URL", ""), f"test-e2e-{uuid.uuid4().hex[:8]}"
    runner = BotRunner(emulator, redis_url=redis_url, prefix=prefix)
    runner.start()
    try:
        yield Chat(emulator, emulator.user(first_name="Ida", language_code="en"))
    finally:
        runner.stop()
        styles.clear_cache()
        if redis_url:
            _redis_cleanup(redis_url, prefix)


def confirmation(chat: Chat, prompt: str, *, style: str = "") -> dict:
    menu = started(chat)
    models = chat.press(menu, "Create image", text_has("Choose a model"))
    options = chat.press(models, "Nano Banana 2.1", has_buttons("Next"))
    if style:
        listing = chat.press(options, "🎨 Style", text_has("Choose a style"))
        options = chat.press(listing, style, has_buttons(f"🎨 Style: 🎨 {style}"))
    chat.press(options, "Next", text_has("Describe the image"))
    return chat.send(prompt, text_has("Check and confirm"))


def text_requests(fake_google) -> list:
    return [r for r in fake_google.requests_for("generateContent", model=TEXT_MODEL)]


def generate_and_receive(chat: Chat, card: dict) -> tuple[GenRequest, dict]:
    chat.press(card, "Generate", text_has("In the queue"))
    photo = chat.wait(lambda m: "photo" in m, timeout=30, edits=False)
    request = wait_until(
        lambda: GenRequest.objects.filter(user__telegram_id=chat.id, delivered_at__isnull=False).first(),
        what="the request to be marked delivered",
    )
    return request, photo


def test_improve_accept_with_a_style_then_the_worker_delivers(chat, fake_google):
    PromptStyle.objects.create(
        name="Акварель", name_en="Watercolour", emoji="🎨", prompt_template="{prompt}, watercolour"
    )
    started(chat)
    fund(chat.id, 10)
    card = confirmation(chat, "a red fox in the snow", style="Watercolour")
    assert "Final prompt: a red fox in the snow, watercolour" in text_of(card)

    suggestion = chat.press(card, "✨ Improve", text_has("Improved description"))
    assert "Improved: a red fox in the snow" in text_of(suggestion) and "0.5 tok." in text_of(suggestion)
    [sent] = text_requests(fake_google)
    assert sent.backend == "gemini" and sent.api_key == "test-gemini-key"
    instruction = sent.json["systemInstruction"]["parts"][0]["text"]
    assert "AI image model" in instruction and "language of the user's description" in instruction
    assert sent.prompt == "a red fox in the snow", "the user's own text, without the style"
    assert UserBalance.objects.get(user__telegram_id=chat.id).total == D(10), "a rewrite charges nothing"

    card = chat.press(suggestion, "Accept", text_has("Check and confirm"))
    assert "Final prompt: Improved: a red fox in the snow, watercolour" in text_of(card)
    assert "✨ Improved description: 0.5 tok." in text_of(card) and "🚀 Generate · 2 tok." in button_texts(card)
    request, photo = generate_and_receive(chat, card)

    image_call = [r for r in fake_google.requests_for("generateContent") if r.model != TEXT_MODEL][-1]
    assert image_call.prompt == "Improved: a red fox in the snow, watercolour"
    request.refresh_from_db()
    assert request.status == "succeeded" and request.delivered_at
    assert request.user_prompt == "Improved: a red fox in the snow" and request.style.name_en == "Watercolour"
    assert "Improved: a red fox in the snow, watercolour" in text_of(photo)
    charges = Transaction.objects.filter(gen_request=request, kind="charge")
    assert sorted(r.operation_key for r in charges) == sorted([request.charge_key, f"gen:{request.pk}:improve"])
    assert UserBalance.objects.get(user__telegram_id=chat.id).total == D("8.00")


def test_improve_then_edit_your_own_version(chat, fake_google):
    started(chat)
    fund(chat.id, 10)
    card = confirmation(chat, "a lighthouse at dawn")
    suggestion = chat.press(card, "✨ Improve", text_has("Improved description"))
    ask = chat.press(suggestion, "Edit", text_has("Send your version"))
    assert "Improved: a lighthouse at dawn" in text_of(ask)
    card = chat.send("a lighthouse at dawn, seen from the sea", text_has("Check and confirm"))
    assert "Improved description" not in text_of(card)
    request, photo = generate_and_receive(chat, card)

    image_call = [r for r in fake_google.requests_for("generateContent") if r.model != TEXT_MODEL][-1]
    assert image_call.prompt == "a lighthouse at dawn, seen from the sea"
    request.refresh_from_db()
    assert request.status == "succeeded" and request.delivered_at and "seen from the sea" in text_of(photo)
    assert [r.operation_key for r in Transaction.objects.filter(gen_request=request, kind="charge")] == [
        request.charge_key
    ], "your own text: the rewrite is not charged"
    assert UserBalance.objects.get(user__telegram_id=chat.id).total == D("8.50")


def test_a_rewrite_the_filter_blocks_keeps_your_text_and_charges_nothing(chat, fake_google):
    started(chat)
    fund(chat.id, 10)
    card = confirmation(chat, "a fox [[blocked]]")
    blocked = chat.press(card, "✨ Improve", text_has("safety filter blocked"))
    assert "Nothing was charged" in text_of(blocked) and "a fox [[blocked]]" in text_of(blocked)
    assert len(text_requests(fake_google)) == 1
    card = chat.press(blocked, "Keep mine", text_has("Check and confirm"))
    assert "Description: a fox [[blocked]]" in text_of(card)
    assert not GenRequest.objects.exists()
    assert not Transaction.objects.filter(user__telegram_id=chat.id, kind="charge").exists()


def test_a_slow_rewrite_times_out_without_holding_up_the_bot(chat, fake_google, settings, emulator):
    settings.PROMPT_IMPROVE_TIMEOUT_SECONDS = 3
    started(chat)
    fund(chat.id, 10)
    card = confirmation(chat, "a slow fox [[latency:8]]")
    chat.user.press(card, "✨ Improve")
    chat.wait(text_has("Improving your description"))
    # Meanwhile the bot answers others at once: the call runs in a thread, not on the event loop.
    other = Chat(emulator, emulator.user(first_name="Max", language_code="en"))
    began = time.monotonic()
    started(other)
    assert time.monotonic() - began < 1.5
    busy = chat.wait(text_has("busy"), timeout=10)
    assert "Nothing was charged" in text_of(busy) and "a slow fox" in text_of(busy)
    assert {"✨ Improve", "↩️ Keep mine"} <= set(button_texts(busy))
    assert not GenRequest.objects.exists()
