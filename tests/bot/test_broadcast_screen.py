"""A broadcast's "bot screen" button opens the screen as a NEW message below the broadcast, which stays
as it is (its text and its button), and the press is answered.

The broadcast is sent by the real runner (botapp.services.broadcasts) through the real sender to the
same Bot API emulator the bot under test polls; the user presses its button like any other."""

from __future__ import annotations

import pytest
from django.utils import timezone

from botapp.callbacks import MenuAction, ScreenCb
from sandbox.telegram import button_texts
from tests.bot.conftest import started, text_has, text_of

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

HELLO = "Hello from the team: <b>new models</b> are here!"


@pytest.fixture
def broadcasting(settings, emu, monkeypatch):
    """The process's sender pointed at the emulator with fast limits; the operators' alerts recorded."""
    from botapp.services import alerts
    from botapp.telegram.sender import close_sender

    settings.BOT_TOKEN = emu.token
    settings.TELEGRAM_API_URL = emu.base_url
    settings.TELEGRAM_GLOBAL_RATE = settings.TELEGRAM_CHAT_RATE = 1000
    settings.TELEGRAM_MAX_WAIT_SECONDS = 3
    settings.BROADCAST_RATE = 500
    settings.BROADCAST_THREADS = 2
    settings.BROADCAST_LEASE_SECONDS = 3
    alerted: list[dict] = []
    monkeypatch.setattr(alerts, "alert_operators", lambda **kw: alerted.append(kw) or True)
    close_sender()
    yield alerted
    close_sender()


def broadcast_to(chat, screen: str, **fields):
    """Run a broadcast with a `screen` button to everyone (here: `chat`) and return its message."""
    from botapp.models import Broadcast, BroadcastRecipient
    from botapp.services import broadcasts as service

    broadcast = Broadcast.objects.create(
        text=HELLO, button_screen=screen, status=Broadcast.Status.SENDING, started_at=timezone.now(), **fields
    )
    service.run_inline(broadcast_id=broadcast.pk)
    assert list(BroadcastRecipient.objects.filter(broadcast=broadcast).values_list("status", flat=True)) == ["sent"]
    return chat.wait(text_has("Hello from the team"), edits=False)


@pytest.mark.parametrize(
    ("screen", "label", "marker"),
    [
        ("main", "🏠 Main menu", "Main menu"),
        ("img", "🎨 Create an image", "Create an image"),
        ("vid", "🎬 Create a video", "Create a video"),
        ("top", "💳 Top up", "Top up your balance"),
        ("bal", "💰 Balance", "Purchased:"),
        ("promo", "🎁 Enter a promocode", "Send the promocode"),
        ("inv", "👥 Invite friends", "Your link"),
    ],
)
def test_the_button_opens_the_screen_as_a_new_message(chat_factory, broadcasting, screen, label, marker):
    chat = chat_factory("Reader", language_code="en")
    started(chat)
    message = broadcast_to(chat, screen)
    assert button_texts(message) == [label]
    assert (
        message["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == ScreenCb(screen=MenuAction(screen)).pack()
    )

    query = chat.user.press(message, label)
    opened = chat.wait(text_has(marker), edits=False)
    assert opened["message_id"] > message["message_id"]
    answer = chat.emu.wait_for_callback_answer(chat.id, query_id=query["id"], since=0)
    assert not answer.get("show_alert")

    now = chat.current(message)
    assert text_of(now) == text_of(message), "the broadcast keeps its text"
    assert button_texts(now) == [label], "and its button"
    assert "edit_date" not in now


def test_the_opened_screen_works_like_the_menus_own(chat_factory, broadcasting):
    """The promocode screen opened from a broadcast waits for the code, as from the menu."""
    from botapp.models import UserBalance

    chat = chat_factory("Reader", language_code="en")
    started(chat)
    message = broadcast_to(chat, "promo", button_text="Get your gift")
    chat.press(message, "Get your gift", text_has("Send the promocode"))
    reply = chat.send("WELCOME2025")
    assert "WELCOME2025" in text_of(reply)
    assert UserBalance.objects.get(user__telegram_id=chat.id).bonus_balance == 10
    assert text_of(chat.current(message)) == text_of(message)


def test_the_button_can_be_pressed_again(chat_factory, broadcasting):
    """The broadcast is never replaced, so its button keeps working: each press is a new screen."""
    chat = chat_factory("Reader", language_code="en")
    started(chat)
    message = broadcast_to(chat, "bal")
    first = chat.press(message, "Balance", text_has("Purchased:"))
    second = chat.press(message, "Balance", text_has("Purchased:"))
    assert len({message["message_id"], first["message_id"], second["message_id"]}) == 3
    assert text_of(chat.current(message)) == text_of(message)


def test_a_forged_screen_the_bot_does_not_open_is_outdated(chat_factory):
    chat = chat_factory("Reader", language_code="en")
    menu = started(chat)
    since = chat.mark()
    answer = chat.press_expect_answer(menu, data=ScreenCb(screen=MenuAction.HISTORY).pack())
    assert "outdated" in answer["text"]
    assert chat.silence(since=since) == []
