"""The generation flows end to end: image and video to the point of charge, insufficient balance,
back and cancel at every step, the double press, and the buttons under a result."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sandbox.telegram import button_texts, inline_buttons, sample_image
from tests.bot.conftest import Chat, fund, has_buttons, started, text_has, text_of

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

MENU_ONLY = ["🏠 Меню"]


def image_options(chat: Chat) -> dict:
    menu = started(chat)
    models = chat.press(menu, "Создать изображение", text_has("Выберите модель"))
    return chat.press(models, "Nano Banana 2.1", has_buttons("Далее"))


def image_confirmation(chat: Chat, prompt: str = "a red fox in the snow, watercolor") -> dict:
    ask = chat.press(image_options(chat), "Далее", text_has("Опишите изображение"))
    assert ask["message_id"]
    return chat.send(prompt, text_has("Проверьте и подтвердите"))


def generate(chat: Chat, card: dict, button: str = "Создать") -> dict:
    """Press "Generate" and wait until the request exists (the card keeps only the menu button)."""
    chat.press(card, button, text_has("в очереди"))
    return chat.wait(lambda m: m["message_id"] == card["message_id"] and button_texts(m) == MENU_ONLY)


def balance_of(telegram_id: int) -> Decimal:
    from botapp.models import UserBalance

    return UserBalance.objects.get(user__telegram_id=telegram_id).total


def test_image_flow_charges_and_queues(chat):
    from botapp.models import GenRequest, Transaction

    started(chat)
    fund(chat.id, 10)
    options = image_options(chat)
    options = chat.press(options, "16:9", has_buttons("✅ 16:9"))
    ask = chat.press(options, "Далее", text_has("Опишите изображение"))
    assert ask["message_id"] == options["message_id"], "menus edit the message in place"
    card = chat.send("a cat <b>in space</b> & stars")
    text = text_of(card)
    assert "🍌 Nano Banana" in text and "16:9" in text
    assert "a cat <b>in space</b> & stars" in text, "user input is escaped, shown as typed"
    assert "10 → 8.5" in text
    generate(chat, card)

    request = GenRequest.objects.get(user__telegram_id=chat.id)
    assert request.status == GenRequest.Status.QUEUED
    assert request.price == Decimal("1.50")
    assert request.params["aspect_ratio"] == "16:9"
    assert request.prompt == "a cat <b>in space</b> & stars"
    assert request.chat_id == chat.id
    status = chat.emu.message(chat.id, request.status_message_id)
    assert status is not None and "в очереди" in text_of(status)
    assert balance_of(chat.id) == Decimal("8.50")
    assert Transaction.objects.filter(gen_request=request, kind="charge").count() == 1


def test_video_flow_with_a_starting_image(chat):
    from botapp.models import GenRequest

    menu = started(chat)
    fund(chat.id, 50)
    models = chat.press(menu, "Создать видео", text_has("Создание видео"))
    assert "Veo 3.1 Fast — от 6.37 ток." in text_of(models), "4 s without sound: 9.5 × 0.67"
    options = chat.press(models, "Veo 3.1 Fast", has_buttons("Далее"))
    assert "16:9" in text_of(options) and "8 с" in text_of(options) and "19 ток." in text_of(options)
    options = chat.press(options, "4 с", has_buttons("✅ 4 с"))
    assert "9.5 ток." in text_of(options), "a 4 s video costs half of an 8 s one (a price per second)"
    options = chat.press(options, "1080p", has_buttons("✅ 1080p"))
    assert "Длительность: 8 с" in text_of(options), "1080p is made only at 8 s: the duration follows"
    ask = chat.press(options, "Первый кадр", text_has("Пришлите одно фото"))
    chat.user.send_photo(sample_image(640, 360))
    options = chat.wait(text_has("Первый кадр: фото приложено"))
    assert options["message_id"] != ask["message_id"]
    assert "Последний кадр: нет" in text_of(options), "the options show what else the model takes"
    prompt_ask = chat.press(options, "Далее", text_has("Опишите видео"))
    assert "Первый кадр: фото приложено" in text_of(prompt_ask)
    card = chat.send("the fox starts running, camera follows")
    assert "Первый кадр: фото приложено" in text_of(card)
    assert "50 → 31" in text_of(card)
    generate(chat, card)

    request = GenRequest.objects.get(user__telegram_id=chat.id)
    assert request.kind == "video"
    assert request.params == {
        "aspect_ratio": "16:9",
        "duration_seconds": 8,
        "resolution": "1080p",
        "generate_audio": True,
    }
    assert len(request.input_images) == 1
    image = request.input_images[0]
    assert set(image) == {"file_id", "file_unique_id", "mime_type", "size", "width", "height", "role"}
    assert image["mime_type"] == "image/jpeg" and image["width"] == 640 and image["role"] == "first"
    assert request.price == Decimal("19.00")
    assert balance_of(chat.id) == Decimal("31.00")


def test_photo_with_caption_goes_straight_to_confirmation(chat):
    started(chat)
    fund(chat.id, 5)
    options = image_options(chat)
    chat.press(options, "Далее", text_has("Опишите изображение"))
    chat.user.send_photo(sample_image(), caption="make it night")
    card = chat.wait(text_has("Проверьте и подтвердите"))
    assert "Приложено фото: 1" in text_of(card)
    assert "make it night" in text_of(card)


def test_insufficient_balance_shows_the_shortfall_and_a_top_up(chat):
    from botapp.models import GenRequest

    started(chat)
    fund(chat.id, 1)
    card = image_confirmation(chat)
    text = text_of(card)
    assert "не хватает" in text and "0.5" in text
    assert has_buttons("Купить 10 ток. за 50 ⭐", "Все пакеты")(card)
    assert not any("Создать" in b for b in button_texts(card))
    methods = chat.press(card, "Купить 10 ток.", has_buttons("Звёзды Telegram"))
    assert "10" in text_of(methods)
    assert GenRequest.objects.count() == 0
    assert balance_of(chat.id) == Decimal("1.00")


def test_top_up_then_resume_the_waiting_generation(chat):
    from botapp.models import GenRequest

    started(chat)
    card = image_confirmation(chat)
    methods = chat.press(card, "Купить 10 ток.", has_buttons("Звёзды Telegram"))
    chat.user.press(methods, "Звёзды Telegram")
    invoice = chat.wait(lambda m: "invoice" in m)
    assert invoice["invoice"]["currency"] == "XTR" and invoice["invoice"]["total_amount"] == 50
    result = chat.user.pay(invoice)
    assert result.ok, result.error_message
    paid = chat.wait(text_has("Оплата прошла"))
    resumed = chat.press(paid, "Вернуться к генерации", text_has("Проверьте и подтвердите"))
    assert "10 → 8.5" in text_of(resumed)
    generate(chat, resumed)
    assert GenRequest.objects.filter(user__telegram_id=chat.id).count() == 1
    assert balance_of(chat.id) == Decimal("8.50")


def test_double_press_charges_once(chat):
    from botapp.models import GenRequest

    started(chat)
    fund(chat.id, 10)
    card = image_confirmation(chat)
    button = next(b for b in inline_buttons(card) if "Создать" in b["text"])
    since = chat.mark()
    chat.user.press_raw(card["message_id"], button["callback_data"])
    chat.user.press_raw(card["message_id"], button["callback_data"])
    chat.user.press_raw(card["message_id"], button["callback_data"])
    chat.wait(lambda m: m["message_id"] == card["message_id"] and button_texts(m) == MENU_ONLY, since=since)
    chat.silence(0.5)
    assert GenRequest.objects.filter(user__telegram_id=chat.id).count() == 1
    assert balance_of(chat.id) == Decimal("8.50")
    queued = [e for e in chat.emu.events("bot_message", chat.id, since=since) if "в очереди" in text_of(e.data)]
    assert len(queued) == 1, "one status message for one action"
    answers = chat.emu.callback_answers(chat.id)
    assert len([a for a in answers if a.get("callback_query_id")]) >= 3, "every press is answered"


def test_old_confirmation_after_a_new_one_is_outdated(chat):
    from botapp.models import GenRequest

    started(chat)
    fund(chat.id, 10)
    old_card = image_confirmation(chat, "first idea")
    new_card = chat.send("second idea", text_has("second idea"))
    assert new_card["message_id"] != old_card["message_id"]
    assert button_texts(chat.current(old_card)) == [], "the old card lost its buttons"
    button = next(b for b in inline_buttons(old_card) if "Создать" in b["text"])
    answer = chat.press_expect_answer(old_card, data=button["callback_data"])
    assert "устарела" in answer["text"]
    assert GenRequest.objects.count() == 0
    generate(chat, new_card)
    assert GenRequest.objects.get().prompt == "second idea"


@pytest.mark.parametrize("step", ["model", "options", "photos", "prompt", "confirm"])
def test_cancel_at_each_step(chat, step):
    from botapp.models import GenRequest

    started(chat)
    fund(chat.id, 10)
    menu = started(chat)
    screen = chat.press(menu, "Создать изображение", text_has("Выберите модель"))
    if step != "model":
        screen = chat.press(screen, "Nano Banana 2.1", has_buttons("Далее"))
    if step == "photos":
        screen = chat.press(screen, "Фото для редактирования", text_has("Пришлите до 14 фото"))
    if step in ("prompt", "confirm"):
        screen = chat.press(screen, "Далее", text_has("Опишите изображение"))
    if step == "confirm":
        screen = chat.send("a lighthouse", text_has("Проверьте и подтвердите"))
    menu_again = chat.press(screen, "Отмена", text_has("Действие отменено"))
    assert "Главное меню" in text_of(menu_again)
    # after cancelling, text is not taken as a prompt
    hint = chat.send("a lighthouse again")
    assert "меню" in text_of(hint).lower()
    assert GenRequest.objects.count() == 0


def test_cancel_command_in_the_middle_of_a_flow(chat):
    options = image_options(chat)
    chat.press(options, "Далее", text_has("Опишите изображение"))
    reply = chat.send("/cancel", text_has("Действие отменено"))
    assert "Главное меню" in text_of(reply)
    assert "меню" in text_of(chat.send("now a prompt?")).lower()


def test_back_walks_the_steps_backwards(chat):
    started(chat)
    fund(chat.id, 10)
    card = image_confirmation(chat)
    ask = chat.press(card, "Изменить описание", text_has("Опишите изображение"))
    assert "Текущее описание" in text_of(ask)
    options = chat.press(ask, "Назад", has_buttons("Далее"))
    models = chat.press(options, "Назад", text_has("Выберите модель"))
    menu = chat.press(models, "Назад", text_has("Главное меню"))
    assert menu["message_id"] == card["message_id"]


def test_options_from_the_confirmation_keep_the_prompt(chat):
    started(chat)
    fund(chat.id, 10)
    card = image_confirmation(chat, "keep me")
    options = chat.press(card, "Параметры", has_buttons("Далее"))
    options = chat.press(options, "9:16", has_buttons("✅ 9:16"))
    card = chat.press(options, "Далее", text_has("Проверьте и подтвердите"))
    assert "keep me" in text_of(card) and "9:16" in text_of(card)


def test_help_and_balance_in_the_middle_keep_the_flow(chat):
    from botapp.models import GenRequest

    started(chat)
    fund(chat.id, 10)
    options = image_options(chat)
    chat.press(options, "Далее", text_has("Опишите изображение"))
    chat.send("/help", text_has("Как это работает"))
    chat.send("/balance", text_has("Баланс"))
    card = chat.send("still my prompt", text_has("Проверьте и подтвердите"))
    generate(chat, card)
    assert GenRequest.objects.get().prompt == "still my prompt"


def test_regenerate_edit_and_animate_from_a_result(chat, bot):
    from aiogram.types import BufferedInputFile

    from botapp.keyboards import result_keyboard
    from botapp.models import GenRequest

    started(chat)
    fund(chat.id, 100)
    generate(chat, image_confirmation(chat, "a castle"))
    request = GenRequest.objects.get()
    # what the worker does: send the result with result_keyboard() and store the file_id
    request.status = GenRequest.Status.SUCCEEDED
    markup = result_keyboard(request, "ru")
    texts = [b.text for row in markup.inline_keyboard for b in row]
    assert texts == ["🔁 Ещё раз", "✏️ Изменить", "🎬 Оживить", "🏠 Меню"]
    upload = BufferedInputFile(sample_image(800, 600), "result.png")
    message = bot.call(lambda: bot.bot.send_photo(chat.id, upload, reply_markup=markup))
    file_id = message.photo[-1].file_id
    request.results = [{"kind": "image", "mime_type": "image/png", "tg_file_id": file_id, "width": 800, "height": 600}]
    request.save()
    sent = chat.emu.message(chat.id, message.message_id)

    again = chat.press(sent, "Ещё раз", text_has("Проверьте и подтвердите"))
    assert "a castle" in text_of(again)
    generate(chat, again)
    assert GenRequest.objects.count() == 2

    edit = chat.press(sent, "Изменить", text_has("Редактирование изображения"))
    card = chat.send("add a dragon", text_has("Проверьте и подтвердите"))
    assert edit and "Приложено фото: 1" in text_of(card)
    generate(chat, card)
    edited = GenRequest.objects.order_by("-id").first()
    assert edited.input_images[0]["file_id"] == file_id and edited.prompt == "add a dragon"

    animate = chat.press(sent, "Оживить", text_has("Оживляем изображение"))
    assert "Gemini Omni Flash" in text_of(animate)
    ask = chat.press(animate, "Далее", text_has("Опишите видео"))
    card = chat.send("the flag waves", text_has("Проверьте и подтвердите"))
    assert ask and "Первый кадр: фото приложено" in text_of(card)
    generate(chat, card)
    animated = GenRequest.objects.order_by("-id").first()
    assert animated.kind == "video" and animated.input_images[0]["file_id"] == file_id


def test_result_buttons_of_someone_else_are_refused(chat_factory):
    from botapp.models import GenRequest

    owner, other = chat_factory("Owner"), chat_factory("Other")
    started(owner)
    fund(owner.id, 10)
    generate(owner, image_confirmation(owner))
    request = GenRequest.objects.get()
    menu = started(other)
    answer = other.press_expect_answer(menu, data=f"r:re:{request.pk}:0")
    assert "устарела" in answer["text"]


def test_video_keyboard_has_no_edit_or_animate():
    from botapp.keyboards import result_keyboard
    from botapp.models import GenRequest

    request = GenRequest(pk=7, kind="video")
    markup = result_keyboard(request, "en", can_edit=True, can_animate=True)
    texts = [b.text for row in markup.inline_keyboard for b in row]
    assert texts == ["🔁 Again", "🏠 Menu"]


def test_a_price_change_refreshes_the_card_and_the_next_tap_generates(chat):
    """The operator changes the price while the card is open: the tap says so, the card is refreshed in
    place with the new price (not a dead end with only "Menu"), and the next tap generates at it."""
    from botapp.models import AIModel, GenRequest

    started(chat)
    fund(chat.id, 10)
    card = image_confirmation(chat)
    assert "10 → 8.5" in text_of(card)
    nano = AIModel.objects.get(slug="nano-banana-2-1")
    AIModel.objects.filter(pk=nano.pk).update(price=Decimal(2))  # the admin, meanwhile
    since = chat.mark()
    chat.user.press(card, "Создать")
    warning = chat.wait(text_has("Цена этих параметров изменилась: теперь 2"), since=since)
    assert button_texts(warning) == []  # the warning alone, no dead end
    refreshed = chat.wait(lambda m: m["message_id"] == card["message_id"] and "10 → 8" in text_of(m), since=since)
    assert not GenRequest.objects.filter(user__telegram_id=chat.id).exists()
    generate(chat, refreshed)
    request = GenRequest.objects.get(user__telegram_id=chat.id)
    assert request.price == Decimal(2) and balance_of(chat.id) == Decimal(8)
