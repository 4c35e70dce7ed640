"""Every state answers unexpected input with a hint; nothing crashes the dispatcher; nothing charges twice."""

from __future__ import annotations

import time

import pytest

from sandbox.telegram import button_texts, sample_image
from tests.bot.conftest import Chat, eventually, fund, has_buttons, started, text_has, text_of
from tests.bot.test_generation import image_options

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def prompt_step(chat: Chat) -> dict:
    return chat.press(image_options(chat), "Далее", text_has("Опишите изображение"))


def photos_step(chat: Chat) -> dict:
    return chat.press(image_options(chat), "Фото для редактирования", text_has("Пришлите до"))


def test_text_where_a_photo_is_expected(chat):
    photos_step(chat)
    hint = chat.send("here is my prompt")
    assert "жду фото" in text_of(hint)
    chat.user.send_photo(sample_image())
    added = chat.wait(text_has("Фото добавлено: 1 из 14"), edits=False)
    assert has_buttons("Готово")(added)
    card = chat.send("now the prompt", text_has("Проверьте и подтвердите"))
    assert "Приложено фото: 1" in text_of(card)


def test_photo_where_the_model_takes_text_only(chat):
    from botapp.models import AIModel

    AIModel.objects.create(
        slug="sketch", name="Sketch", kind="image", provider="demo", provider_model_id="sketch", price=1, is_active=True
    )  # an operator's model that takes text only
    menu = started(chat)
    models = chat.press(menu, "Создать изображение", text_has("Выберите модель"))
    options = chat.press(models, "Sketch", has_buttons("Далее"))
    assert not any("Фото" in b for b in button_texts(options)), "no photo button for a text-only model"
    chat.press(options, "Далее", text_has("Опишите изображение"))
    chat.user.send_photo(sample_image(), caption="ignored caption")
    hint = chat.wait(edits=False)
    assert "не принимает фото" in text_of(hint)
    card = chat.send("a mountain lake", text_has("Проверьте и подтвердите"))
    assert "Sketch" in text_of(card)


@pytest.mark.parametrize("kind", ["sticker", "voice", "video", "contact"])
def test_unsupported_content_in_the_prompt_step(chat, kind):
    prompt_step(chat)
    getattr(chat.user, f"send_{kind}")()
    hint = chat.wait(edits=False)
    assert "не умею использовать" in text_of(hint)
    assert "описание текстом или фото" in text_of(hint)


@pytest.mark.parametrize("kind", ["sticker", "voice"])
def test_unsupported_content_outside_a_flow(chat, kind):
    started(chat)
    getattr(chat.user, f"send_{kind}")()
    assert "Выберите действие в меню" in text_of(chat.wait(edits=False))


def test_photo_outside_a_flow_explains_where_to_send_it(chat):
    started(chat)
    chat.user.send_photo(sample_image())
    assert "Создать изображение" in text_of(chat.wait(edits=False))


def test_input_while_choosing_a_model(chat):
    menu = started(chat)
    chat.press(menu, "Создать изображение", text_has("Выберите модель"))
    assert "Сначала выберите модель" in text_of(chat.send("a cat"))


def test_empty_and_overlong_prompts(chat):
    prompt_step(chat)
    assert "Описание пустое" in text_of(chat.send("   \n  "))
    long_prompt = "д" * 4001
    hint = chat.send(long_prompt)
    assert "4001" in text_of(hint) and "4000" in text_of(hint)
    card = chat.send("д" * 4000, text_has("Проверьте и подтвердите"))
    assert card


def test_too_many_photos_in_an_album(chat):
    from botapp import bridge
    from botapp.models import AIModel
    from sandbox.telegram import inline_buttons

    nano = AIModel.objects.get(slug="nano-banana-2-1")  # an operator's model that takes 3 photos
    AIModel.objects.filter(pk=nano.pk).update(capabilities={**nano.capabilities, "max_input_images": 3})
    bridge.clear_caches()
    photos_step(chat)
    since = chat.mark()
    chat.user.send_album([sample_image(300 + i, 300) for i in range(5)], caption="merge these")
    card = chat.wait(text_has("Проверьте и подтвердите"), since=since, edits=False)
    assert "Приложено фото: 3" in text_of(card)
    assert "merge these" in text_of(card)
    notes = [e.data for e in chat.emu.events("bot_message", chat.id, since=since) if "максимум 3" in text_of(e.data)]
    assert len(notes) == 1, "one hint for the whole album"
    replies = [e for e in chat.emu.events("bot_message", chat.id, since=since)]
    assert len(replies) == 2, "an album gets one answer, not one per photo"
    assert inline_buttons(card)


def test_an_album_outside_a_flow_is_answered_once(chat):
    started(chat)
    since = chat.mark()
    chat.user.send_album([sample_image(300 + i, 300) for i in range(6)])
    chat.wait(edits=False, since=since)
    time.sleep(0.5)  # the other parts have been handled by now
    replies = list(chat.emu.events("bot_message", chat.id, since=since))
    assert len(replies) == 1, [text_of(e.data) for e in replies]


def test_photo_over_the_size_limit(chat, settings):
    prompt_step(chat)
    settings.MAX_INPUT_IMAGE_BYTES = 1000
    chat.user.send_photo(sample_image(1200, 900))
    hint = chat.wait(edits=False)
    assert "слишком большое" in text_of(hint)


def test_documents_image_accepted_other_refused(chat):
    from botapp.models import GenRequest

    started(chat)
    fund(chat.id, 10)
    prompt_step(chat)
    chat.user.send_document(b"%PDF-1.4 not an image", "doc.pdf", "application/pdf")
    assert "не изображение" in text_of(chat.wait(edits=False))
    chat.user.send_document(sample_image(400, 400, "PNG"), "pic.png", "image/png", caption="make it blue")
    card = chat.wait(text_has("Проверьте и подтвердите"), edits=False)
    chat.press(card, "Создать", text_has("в очереди"))
    chat.wait(lambda m: m["message_id"] == card["message_id"] and button_texts(m) == ["🏠 Меню"])
    request = GenRequest.objects.get()
    assert request.input_images[0]["mime_type"] == "image/png"


@pytest.mark.parametrize("data", ["garbage", "g:zz:", "m:nope", "r:re:notanumber:0", "s:l:xx", "p:pkg:999999:"])
def test_malformed_or_unknown_callback_data(chat, data):
    menu = started(chat)
    answer = chat.press_expect_answer(menu, data=data)
    assert answer["show_alert"] is True
    assert "устарела" in answer["text"] or "недоступен" in answer["text"]
    assert "Главное меню" in text_of(chat.send("/menu"))


def test_flow_button_of_a_cancelled_flow_is_outdated(chat):
    options = image_options(chat)
    chat.send("/cancel", text_has("отменено"))
    answer = chat.press_expect_answer(options, "Далее")
    assert "устарела" in answer["text"]


def test_old_menu_buttons_still_navigate(chat):
    first = started(chat)
    started(chat)
    screen = chat.press(first, "Профиль", text_has("Уровень"))
    assert screen["message_id"] == first["message_id"]


def test_unknown_command_inside_a_flow_keeps_the_flow(chat):
    prompt_step(chat)
    assert "Не знаю такой команды" in text_of(chat.send("/nonsense"))
    assert "Проверьте и подтвердите" in text_of(chat.send("a prompt after all"))


def test_menu_command_inside_a_flow_leaves_it(chat):
    prompt_step(chat)
    assert "Главное меню" in text_of(chat.send("/menu"))
    assert "Выберите действие в меню" in text_of(chat.send("a prompt?"))


def test_user_who_blocked_the_bot(chat_factory):
    from botapp.models import TgUser

    chat = chat_factory("Blocker")
    other = chat_factory("Other")
    started(chat)
    chat.user.block_bot()
    assert eventually(lambda: TgUser.objects.get(telegram_id=chat.id).bot_blocked), "my_chat_member(kicked)"
    # an update sent just before blocking: the answer fails with 403 and nothing crashes
    chat.user.send_text("/menu")
    assert eventually(lambda: chat.emu.call_count("sendMessage", chat.id, ok=False) >= 1)
    # The 403 is recorded before the bot's handler marks the user again: wait for the mark.
    assert eventually(lambda: TgUser.objects.get(telegram_id=chat.id).bot_blocked)
    assert "Главное меню" in text_of(started(other)), "the dispatcher still serves everyone else"


def test_a_failing_telegram_call_gets_an_apology(chat):
    started(chat)
    chat.emu.fail_next("sendMessage", 500, chat_id=chat.id)
    apology = chat.send("/help")
    assert "Что-то пошло не так" in text_of(apology)
    assert "Traceback" not in text_of(apology)
    assert "Как это работает" in text_of(chat.send("/help"))


def test_banned_user_gets_one_polite_message(chat):
    from botapp.models import TgUser

    menu = started(chat)
    TgUser.objects.filter(telegram_id=chat.id).update(is_banned=True)
    notice = chat.send("/start")
    assert "заблокирован" in text_of(notice)
    since = chat.mark()
    chat.user.send_text("/menu")
    chat.user.send_text("hello?")
    answer = chat.press_expect_answer(menu, "Профиль")
    assert not answer.get("text")
    assert chat.silence(0.4, since=since) == []


@pytest.mark.throttle(0.5)
def test_flood_is_throttled_with_one_hint(chat):
    started(chat)
    since = chat.mark()
    for i in range(40):
        chat.user.send_text(f"spam {i}")
    chat.wait(text_has("Слишком быстро"), since=since, edits=False)
    replies = chat.silence(0.6, since=since)
    hints = [m for m in replies if "Слишком быстро" in text_of(m)]
    assert len(hints) == 1
    assert len(replies) <= 15, f"{len(replies)} replies to 40 messages"
