"""The web chat page in a real browser (Debian's chromium driven by Playwright), against the emulator
and a tiny scripted aiogram bot (``scripted_bot.py``). Playwright never downloads a browser here."""

from __future__ import annotations

import json
import shutil
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.telegram import BotAPIEmulator, sample_image
from tests.browser import chromium, skip_reason

from .scripted_bot import XSS_ENTITY_TEXT, ScriptedBot

SHOTS = Path(tempfile.gettempdir()) / "webchat-screenshots"
WAIT = 10_000  # ms


pytestmark = [pytest.mark.slow, pytest.mark.skipif(skip_reason() is not None, reason=str(skip_reason()))]


@pytest.fixture(scope="module")
def emu() -> Iterator[BotAPIEmulator]:
    emulator = BotAPIEmulator(bot_username="sandbox_demo_bot", bot_first_name="GenStudio")
    with emulator, ScriptedBot(emulator):
        yield emulator


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as context:
        yield context


class ChatPage:
    """One browser tab on the web chat as one sandbox user, recording anything a script might pop up."""

    def __init__(self, browser: Any, emu: BotAPIEmulator, user_id: int) -> None:
        self.emu, self.user_id = emu, user_id
        self.page = browser.new_page()
        self.tabs = len(browser.pages)
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.goto(f"{emu.webchat_url}#user={user_id}")
        self.page.wait_for_selector(f"[data-testid=user-option][data-user-id='{user_id}'].active", timeout=WAIT)
        self.page.wait_for_selector("[data-testid=connection-status]", state="hidden", timeout=WAIT)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def send(self, text: str) -> None:
        self.page.fill("[data-testid=message-input]", text)
        self.page.press("[data-testid=message-input]", "Enter")

    def bot(self, text: str) -> Any:
        return self.page.locator("[data-testid=message][data-from=bot]", has_text=text)

    def mine(self, text: str) -> Any:
        return self.page.locator("[data-testid=message][data-from=user]", has_text=text)

    def shot(self, name: str) -> Path:
        SHOTS.mkdir(exist_ok=True)
        path = SHOTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def close(self) -> None:
        assert self.errors == [], self.errors
        self.page.close()


def new_user(emu: BotAPIEmulator, language: str = "en") -> int:
    """A fresh sandbox user for one test (the module shares one emulator)."""
    assert emu.webchat is not None
    name = "U" + uuid.uuid4().hex[:6]
    return emu.user(int(uuid.uuid4().int % 10**9) + 3_000_000_000, name, language_code=language).id


@pytest.fixture
def chat(browser: Any, emu: BotAPIEmulator) -> Iterator[ChatPage]:
    page = ChatPage(browser, emu, new_user(emu))
    yield page
    page.close()


def test_formatting_buttons_toast_alert_and_edit_in_place(chat: ChatPage) -> None:
    from playwright.sync_api import expect

    page = chat.page
    page.click("[data-testid=start-button]")
    hello = chat.bot("Hello,")
    expect(hello).to_be_visible(timeout=WAIT)
    expect(hello.locator("strong")).to_have_text(chat.emu.user(chat.user_id).info["first_name"])
    expect(hello.locator("code.inline-code")).to_have_text("-")
    expect(hello.locator("em")).to_have_text("italic")
    expect(hello.locator("u")).to_have_text("under")
    expect(hello.locator("s")).to_have_text("struck")
    expect(hello.locator("blockquote")).to_have_text("a quote")
    expect(hello.locator("pre .pre-lang")).to_have_text("python")
    expect(hello.locator("pre code")).to_have_text("print(1)")
    spoiler = hello.locator(".spoiler")
    expect(spoiler).not_to_have_class("spoiler revealed")
    spoiler.click()
    expect(spoiler).to_have_class("spoiler revealed")

    hello.get_by_role("button", name="Press me").click()
    expect(page.get_by_test_id("toast")).to_have_text("Pressed!", timeout=WAIT)
    expect(chat.bot("You pressed the button")).to_be_visible(timeout=WAIT)
    queries = [u["callback_query"] for u in chat.emu.updates("callback_query")]
    presses = [q["data"] for q in queries if q["from"]["id"] == chat.user_id]
    assert presses == ["press"]

    hello.get_by_role("button", name="Alert").click()
    expect(page.get_by_test_id("alert-dialog")).to_be_visible(timeout=WAIT)
    expect(page.get_by_test_id("alert-text")).to_have_text("This is an alert")
    page.get_by_test_id("alert-ok").click()
    expect(page.get_by_test_id("alert-dialog")).to_be_hidden()

    message_id = hello.get_attribute("data-message-id")
    count = page.locator("[data-testid=message][data-from=bot]").count()
    hello.get_by_role("button", name="Edit me").click()
    edited = page.locator(f"[data-testid=message][data-message-id='{message_id}']")
    expect(edited.get_by_test_id("message-text")).to_have_text("Edited in place", timeout=WAIT)
    expect(edited.locator("em")).to_have_text("in place")
    expect(edited.locator(".edited")).to_be_visible()
    expect(edited.get_by_test_id("inline-button")).to_have_text(["Edit again"])
    assert page.locator("[data-testid=message][data-from=bot]").count() == count
    edited.get_by_role("button", name="Edit again").click()
    expect(edited.get_by_test_id("message-text")).to_have_text("Edited twice", timeout=WAIT)
    chat.shot("formatting")


def test_bot_html_and_links_never_run_script(chat: ChatPage) -> None:
    from playwright.sync_api import expect

    page = chat.page
    chat.send("/xss")
    expect(chat.bot(XSS_ENTITY_TEXT)).to_be_visible(timeout=WAIT)
    escaped = chat.bot("Try:")
    expect(escaped).to_contain_text("<script>window.__xss=1</script>")
    expect(escaped).to_contain_text('<img src=x onerror="window.__xss=2">')
    raw = chat.bot("bold?")
    expect(raw.get_by_test_id("message-text")).to_have_text(
        "<script>window.__xss=4</script><img src=x onerror=window.__xss=5><b onclick=window.__xss=7>bold?</b>"
    )
    messages = page.get_by_test_id("messages")
    assert messages.locator("script").count() == 0
    assert messages.locator("[data-testid=message-text] img, [data-testid=message-text] b").count() == 0

    evil = escaped.get_by_text("evil link")
    assert evil.evaluate("node => node.tagName") == "SPAN"
    expect(evil).to_have_attribute("data-testid", "inert-link")
    evil.click()
    entity_link = chat.bot(XSS_ENTITY_TEXT).get_by_test_id("inert-link")
    expect(entity_link).to_have_text("click")
    entity_link.click()
    good = escaped.locator("a", has_text="good link")
    expect(good).to_have_attribute("href", "https://example.com/")
    expect(good).to_have_attribute("rel", "noopener noreferrer nofollow")
    assert messages.locator("a[href^='javascript' i]").count() == 0

    page.wait_for_timeout(300)
    assert page.evaluate("window.__xss") is None
    assert chat.dialogs == []
    assert len(page.context.pages) == chat.tabs  # nothing opened
    chat.shot("xss")


def test_reply_keyboard_typing_indicator_and_command_menu(browser: Any, emu: BotAPIEmulator) -> None:
    from playwright.sync_api import expect

    chat = ChatPage(browser, emu, new_user(emu, "ru"))
    page = chat.page
    chat.send("/start")
    keyboard = page.get_by_test_id("reply-keyboard")
    expect(keyboard).to_be_visible(timeout=WAIT)
    expect(keyboard.get_by_test_id("reply-button")).to_have_text(["Ping", "Photo"])
    expect(page.get_by_test_id("message-input")).to_have_attribute("placeholder", "Choose a button")

    keyboard.get_by_test_id("reply-button").filter(has_text="Ping").click()
    expect(chat.mine("Ping")).to_be_visible(timeout=WAIT)
    typing = page.get_by_test_id("typing-indicator")
    expect(typing).to_be_visible(timeout=WAIT)
    expect(typing).to_contain_text("typing…")
    expect(chat.bot("Pong")).to_be_visible(timeout=WAIT)
    expect(typing).to_be_hidden()
    expect(keyboard).to_be_hidden()  # the bot removed it

    page.get_by_test_id("menu-button").click()
    menu = page.get_by_test_id("command-menu")
    expect(menu).to_be_visible(timeout=WAIT)
    expect(menu.get_by_test_id("command-item")).to_have_count(3)
    expect(menu).to_contain_text("Запустить бота")  # the user's language
    page.fill("[data-testid=message-input]", "/ph")
    page.get_by_test_id("message-input").dispatch_event("input")
    expect(menu.get_by_test_id("command-item")).to_have_count(1)
    menu.get_by_test_id("command-item").click()
    expect(chat.mine("/photo")).to_be_visible(timeout=WAIT)
    photo = chat.bot("A sample photo").get_by_test_id("message-photo")
    expect(photo).to_be_visible(timeout=WAIT)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=photo.element_handle(), timeout=WAIT)
    assert photo.evaluate("img => img.naturalWidth") > 100
    expect(chat.bot("A sample photo").locator("em")).to_have_text("sample")

    shown = chat.bot("A sample photo")
    message_id, before = shown.get_attribute("data-message-id"), photo.get_attribute("src")
    shown.get_by_role("button", name="Swap photo").click()  # editMessageMedia: new photo, new caption, in place
    swapped = page.locator(f"[data-testid=message][data-message-id='{message_id}']")
    expect(swapped.get_by_test_id("message-text")).to_have_text("Swapped photo", timeout=WAIT)
    expect(swapped.locator("strong")).to_have_text("photo")
    assert swapped.get_by_test_id("message-photo").get_attribute("src") != before
    expect(swapped.get_by_test_id("inline-button")).to_have_count(0)  # the edit dropped the keyboard
    _bot_delete(emu, chat.user_id, int(message_id or 0))
    expect(swapped).to_have_count(0, timeout=WAIT)
    chat.close()

    english = ChatPage(browser, emu, new_user(emu, "en"))
    english.page.get_by_test_id("menu-button").click()
    expect(english.page.get_by_test_id("command-menu")).to_contain_text("Start the bot", timeout=WAIT)
    english.close()


def test_upload_a_photo_and_an_album(chat: ChatPage, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = chat.page
    files = []
    for index, color in enumerate([(220, 80, 80), (80, 200, 120), (240, 200, 60)]):
        path = tmp_path / f"photo{index}.png"
        path.write_bytes(sample_image(320 + index * 40, 200, color=color))
        files.append(str(path))

    page.get_by_test_id("file-input").set_input_files(files[0])
    dialog = page.get_by_test_id("upload-dialog")
    expect(dialog).to_be_visible(timeout=WAIT)
    page.fill("[data-testid=upload-caption]", "make it blue")
    page.get_by_test_id("upload-send").click()
    expect(dialog).to_be_hidden(timeout=WAIT)
    expect(chat.mine("make it blue").get_by_test_id("message-photo")).to_be_visible(timeout=WAIT)
    expect(chat.bot("Got a photo 320x200 caption=make it blue")).to_be_visible(timeout=WAIT)

    page.get_by_test_id("file-input").set_input_files(files[1:])
    expect(dialog).to_be_visible(timeout=WAIT)
    page.get_by_test_id("upload-send").click()
    expect(chat.bot("Got a photo 400x200 in an album")).to_be_visible(timeout=WAIT)
    expect(chat.bot("Got a photo 360x200 in an album")).to_be_visible(timeout=WAIT)
    album = page.locator(".album.out").last
    expect(album.get_by_test_id("message-photo")).to_have_count(2)
    messages = [u["message"] for u in chat.emu.updates("message")]
    sent = [m for m in messages if m["from"]["id"] == chat.user_id and "photo" in m]
    assert len(sent) == 3 and sent[1]["media_group_id"] == sent[2]["media_group_id"]
    chat.shot("upload")


def test_pay_with_stars_approved_and_refused(chat: ChatPage) -> None:
    from playwright.sync_api import expect

    page = chat.page
    chat.send("/invoice")
    invoice = chat.bot("100 tokens for the sandbox")
    pay = invoice.get_by_test_id("pay-button")
    expect(pay).to_have_text("Pay ⭐ 50", timeout=WAIT)
    pay.click()
    checkout = page.get_by_test_id("checkout")
    expect(checkout).to_be_visible(timeout=WAIT)
    expect(page.get_by_test_id("checkout-title")).to_have_text("Tokens")
    expect(page.get_by_test_id("checkout-confirm")).to_have_text("Pay ⭐ 50")
    page.get_by_test_id("checkout-confirm").click()
    expect(checkout).to_be_hidden(timeout=WAIT)
    expect(page.locator("[data-testid=message].service", has_text="You successfully transferred ⭐ 50")).to_be_visible()
    expect(chat.bot("Thanks! Paid 50 stars")).to_be_visible(timeout=WAIT)
    expect(pay).to_be_disabled()
    assert [p.invoice_payload for p in chat.emu.payments() if p.user_id == chat.user_id] == ["ok"]

    chat.send("/refused")
    refused = chat.bot("100 tokens for the sandbox").last
    expect(refused.get_by_test_id("pay-button")).to_be_enabled(timeout=WAIT)
    refused.get_by_test_id("pay-button").click()
    page.get_by_test_id("checkout-confirm").click()
    expect(page.get_by_test_id("checkout-error")).to_have_text("Sorry, sold out", timeout=WAIT)
    chat.shot("checkout-refused")
    page.get_by_test_id("checkout-cancel").click()
    expect(checkout).to_be_hidden()
    assert [p.invoice_payload for p in chat.emu.payments() if p.user_id == chat.user_id] == ["ok"]


def test_switch_users_deep_links_and_start_payload(browser: Any, emu: BotAPIEmulator) -> None:
    from playwright.sync_api import expect

    first, second = new_user(emu), new_user(emu, "ru")
    chat = ChatPage(browser, emu, first)
    page = chat.page
    chat.send("hello there")
    expect(chat.bot("You said: hello there")).to_be_visible(timeout=WAIT)

    page.click(f"[data-testid=user-option][data-user-id='{second}']")
    expect(page.get_by_test_id("start-button")).to_be_visible(timeout=WAIT)
    expect(chat.bot("You said: hello there")).to_have_count(0)
    expect(page.get_by_test_id("current-user")).to_contain_text(emu.user(second).info["first_name"])
    page.fill("[data-testid=start-payload]", "promo7")
    page.click("[data-testid=start-payload-send]")
    expect(chat.mine("/start promo7")).to_be_visible(timeout=WAIT)
    expect(chat.bot("payload=promo7")).to_be_visible(timeout=WAIT)
    chat.bot("payload=promo7").get_by_role("button", name="Deep link").click()  # t.me/<bot>?start=deep42
    expect(chat.mine("/start deep42")).to_be_visible(timeout=WAIT)
    expect(chat.bot("payload=deep42")).to_be_visible(timeout=WAIT)
    assert len(page.context.pages) == chat.tabs  # rewritten to the sandbox, no tab opened
    starts = [u["message"]["text"] for u in emu.updates("message") if u["message"]["from"]["id"] == second]
    assert starts == ["/start promo7", "/start deep42"]

    _bot_says(emu, first, "while you were away")  # to the other user: an unread badge
    badge = page.locator(f"[data-testid=user-option][data-user-id='{first}'] .badge")
    expect(badge).to_have_text("1", timeout=WAIT)
    page.click(f"[data-testid=user-option][data-user-id='{first}']")
    expect(chat.bot("You said: hello there")).to_be_visible(timeout=WAIT)
    expect(chat.bot("while you were away")).to_be_visible()
    expect(chat.bot("payload=deep42")).to_have_count(0)
    page.set_viewport_size({"width": 390, "height": 760})  # a phone: the users move into a drawer
    expect(page.get_by_test_id("sidebar")).not_to_be_in_viewport()
    page.get_by_test_id("sidebar-toggle").click()
    expect(page.get_by_test_id("sidebar")).to_be_in_viewport(timeout=WAIT)
    chat.shot("mobile")
    chat.close()


def _bot_api(emu: BotAPIEmulator, method: str, **params: Any) -> Any:
    request = urllib.request.Request(
        f"{emu.base_url}/bot{emu.token}/{method}",
        data=json.dumps(params).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        answer = json.load(response)
    assert answer["ok"], answer
    return answer["result"]


def _bot_says(emu: BotAPIEmulator, chat_id: int, text: str) -> None:
    _bot_api(emu, "sendMessage", chat_id=chat_id, text=text)


def _bot_delete(emu: BotAPIEmulator, chat_id: int, message_id: int) -> None:
    _bot_api(emu, "deleteMessage", chat_id=chat_id, message_id=message_id)


def test_a_good_looking_screenshot(browser: Any) -> None:
    """The page a person sees after a short conversation (also saved to /tmp/webchat.png)."""
    from playwright.sync_api import expect

    emu = BotAPIEmulator(bot_username="sandbox_demo_bot", bot_first_name="GenStudio")
    with emu, ScriptedBot(emu):
        assert emu.webchat is not None
        emu.webchat.ensure_presets()
        chat = ChatPage(browser, emu, 100002)  # Ben (en), a preset user
        page = chat.page
        page.set_viewport_size({"width": 1280, "height": 1000})
        chat.send("/start")
        expect(chat.bot("Pick one below")).to_be_visible(timeout=WAIT)
        chat.bot("Hello,").get_by_role("button", name="Press me").click()
        expect(chat.bot("You pressed the button")).to_be_visible(timeout=WAIT)
        chat.send("/photo")
        expect(chat.bot("A sample photo").get_by_test_id("message-photo")).to_be_visible(timeout=WAIT)
        chat.send("/invoice")
        expect(chat.bot("100 tokens for the sandbox")).to_be_visible(timeout=WAIT)
        page.wait_for_timeout(3000)  # let the toast fade
        path = chat.shot("webchat")
        chat.close()
    shutil.copy(path, Path(tempfile.gettempdir()) / "webchat.png")
    assert path.stat().st_size > 20_000  # a rendered page, not a blank one


def test_the_page_reconnects_and_resyncs_after_a_restart(browser: Any) -> None:
    from playwright.sync_api import expect

    first = BotAPIEmulator(bot_username="sandbox_demo_bot")
    with first:
        assert first.webchat is not None
        first.webchat.ensure_presets()
        chat = ChatPage(browser, first, 100001)
        page = chat.page
        _bot_says(first, 100001, "before the restart")
        expect(chat.bot("before the restart")).to_be_visible(timeout=WAIT)
        port = first.port
    expect(page.get_by_test_id("connection-status")).to_be_visible(timeout=WAIT)  # the stream dropped

    second = BotAPIEmulator(bot_username="sandbox_demo_bot", port=port)  # a new process: a new, empty world
    with second:
        assert second.webchat is not None
        second.webchat.ensure_presets()
        expect(page.get_by_test_id("connection-status")).to_be_hidden(timeout=WAIT)  # reconnected by itself
        expect(page.get_by_test_id("start-button")).to_be_visible(timeout=WAIT)  # read again, not kept
        expect(chat.bot("before the restart")).to_have_count(0)
        _bot_says(second, 100001, "a fresh world")
        expect(chat.bot("a fresh world")).to_be_visible(timeout=WAIT)
    chat.close()
