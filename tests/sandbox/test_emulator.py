"""Tests of the Bot API emulator driven by the real aiogram Bot / Dispatcher."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    LabeledPrice,
    MenuButtonCommands,
    Message,
    PreCheckoutQuery,
    ReplyParameters,
    Update,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from sandbox.telegram import BotAPIEmulator, EmulatedUser, WaitTimeout, sample_image, sample_mp4

ROOT = Path(__file__).resolve().parents[2]


def make_bot(emu: BotAPIEmulator, token: str | None = None) -> Bot:
    """A real aiogram Bot pointed at the emulator."""
    return Bot(token or emu.token, session=AiohttpSession(api=TelegramAPIServer.from_base(emu.base_url)))


def keyboard(*buttons: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=t, callback_data=d)] for t, d in buttons])


@pytest.fixture
async def emu() -> AsyncIterator[BotAPIEmulator]:
    async with BotAPIEmulator(webhook_retry_delays=(0.01, 0.01, 0.01)) as emulator:
        yield emulator


@pytest.fixture
async def bot(emu: BotAPIEmulator) -> AsyncIterator[Bot]:
    instance = make_bot(emu)
    yield instance
    await instance.session.close()


@pytest.fixture
def user(emu: BotAPIEmulator) -> EmulatedUser:
    return emu.user(user_id=111, first_name="Ann", username="ann", language_code="ru")


async def eventually(condition: Callable[[], bool], within: float = 3.0) -> None:
    """Poll ``condition`` until it holds (for effects outside the emulator, e.g. handler side effects)."""
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


class Polling:
    """Runs ``Dispatcher.start_polling`` in a task and stops it cleanly."""

    def __init__(self, dp: Dispatcher, bot: Bot) -> None:
        self.dp, self.bot = dp, bot
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Polling:
        self.task = asyncio.create_task(
            self.dp.start_polling(self.bot, handle_signals=False, close_bot_session=False, polling_timeout=2)
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.dp.stop_polling()
        assert self.task is not None
        await asyncio.wait_for(self.task, 5)


# ---------------------------------------------------------------- basics


async def test_get_me_and_wrong_token(emu: BotAPIEmulator, bot: Bot) -> None:
    me = await bot.get_me()
    assert me.id == emu.bot_id and me.is_bot and me.username == "emulator_bot"
    other = make_bot(emu, token="42:WRONG")
    with pytest.raises(TelegramUnauthorizedError):
        await other.get_me()
    await other.session.close()


async def test_raw_http_json_form_query_and_unknown_method(emu: BotAPIEmulator, user: EmulatedUser) -> None:
    base = f"{emu.base_url}/bot{emu.token}"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/sendMessage", json={"chat_id": user.id, "text": "json"}) as resp:
            assert resp.status == 200 and (await resp.json())["result"]["text"] == "json"
        markup = json.dumps({"inline_keyboard": [[{"text": "x", "callback_data": "x"}]]})
        form = {"chat_id": str(user.id), "text": "form", "reply_markup": markup}
        async with http.post(f"{base}/SENDMESSAGE", data=form) as resp:
            body = await resp.json()
            assert body["result"]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "x"
        async with http.get(f"{base}/sendMessage", params={"chat_id": user.id, "text": "get"}) as resp:
            assert (await resp.json())["result"]["text"] == "get"
        async with http.post(f"{base}/noSuchMethod") as resp:
            assert resp.status == 404
            assert await resp.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        async with http.post(f"{base}/sendMessage", json={"chat_id": 999, "text": "x"}) as resp:
            assert (await resp.json())["description"] == "Bad Request: chat not found"
    assert [m["text"] for m in emu.messages(user.id)] == ["json", "form", "get"]
    assert emu.call_count("sendMessage") == 4 and emu.call_count("sendMessage", ok=False) == 1


# ---------------------------------------------------------------- messages


async def test_send_edit_delete(emu: BotAPIEmulator, bot: Bot, user: EmulatedUser) -> None:
    sent = await bot.send_message(
        user.id, "<b>Balance</b>: 10", parse_mode="HTML", reply_markup=keyboard(("Buy", "buy"))
    )
    assert isinstance(sent, Message) and sent.text == "Balance: 10"
    assert sent.entities and sent.entities[0].type == "bold"
    assert emu.last_message(user.id)["reply_markup"]["inline_keyboard"][0][0]["text"] == "Buy"

    edited = await bot.edit_message_text(
        "Balance: 20", chat_id=user.id, message_id=sent.message_id, reply_markup=keyboard(("Buy", "buy"))
    )
    assert isinstance(edited, Message) and edited.edit_date is not None
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            "Balance: 20", chat_id=user.id, message_id=sent.message_id, reply_markup=keyboard(("Buy", "buy"))
        )
    # editing without reply_markup removes the keyboard, like Telegram
    await bot.edit_message_text("Balance: 30", chat_id=user.id, message_id=sent.message_id)
    assert "reply_markup" not in emu.message(user.id, sent.message_id)
    await bot.edit_message_reply_markup(chat_id=user.id, message_id=sent.message_id, reply_markup=keyboard(("A", "a")))
    assert emu.message(user.id, sent.message_id)["reply_markup"]["inline_keyboard"][0][0]["text"] == "A"
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=user.id, message_id=999)
    with pytest.raises(TelegramBadRequest, match="there is no caption in the message to edit"):
        await bot.edit_message_caption(chat_id=user.id, message_id=sent.message_id, caption="c")

    assert await bot.delete_message(user.id, sent.message_id) is True
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(user.id, sent.message_id)
    assert emu.messages(user.id) == [] and emu.is_deleted(user.id, sent.message_id)
    assert emu.call_count("editMessageText") == 4

    question = user.send_text("question")
    answer = await bot.send_message(
        user.id, "answer", reply_parameters=ReplyParameters(message_id=question["message_id"])
    )
    assert answer.reply_to_message and answer.reply_to_message.text == "question"
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await bot.send_message(user.id, "x", reply_parameters=ReplyParameters(message_id=999))
    copied = await bot.copy_message(user.id, user.id, question["message_id"])
    assert emu.message(user.id, copied.message_id)["text"] == "question"
    forwarded = await bot.forward_message(user.id, user.id, question["message_id"])
    assert forwarded.text == "question" and forwarded.forward_origin.sender_user.id == user.id
    with pytest.raises(TelegramBadRequest, match="message to forward not found"):
        await bot.forward_message(user.id, user.id, 999)


async def test_limits_and_parse_errors(bot: Bot, user: EmulatedUser) -> None:
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(user.id, "x" * 4097)
    await bot.send_message(user.id, "x" * 4096)
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(user.id, "   ")
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(user.id, "hi", reply_markup=keyboard(("long", "é" * 33)))
    with pytest.raises(TelegramBadRequest, match="Text buttons are unallowed"):
        await bot.send_message(
            user.id, "hi", reply_markup=InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="plain")]])
        )
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(user.id, "1 < 2 <oops>", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match=r"Character '\.' is reserved"):
        await bot.send_message(user.id, "Done.", parse_mode="MarkdownV2")
    ok = await bot.send_message(user.id, "*Done*\\. 1 &lt; 2", parse_mode="MarkdownV2")
    assert ok.text == "Done. 1 &lt; 2" and ok.entities and ok.entities[0].type == "bold"
    photo = BufferedInputFile(sample_image(64, 64), "p.png")
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await bot.send_photo(user.id, photo, caption="c" * 1025)


# ---------------------------------------------------------------- files


async def test_photo_upload_resend_and_download(emu: BotAPIEmulator, bot: Bot, user: EmulatedUser) -> None:
    data = sample_image(1600, 1200, "JPEG")
    sent = await bot.send_photo(
        user.id, BufferedInputFile(data, "result.jpg"), caption="Ready", reply_markup=keyboard(("Again", "again"))
    )
    assert sent.photo and sent.caption == "Ready"
    largest = sent.photo[-1]
    assert (largest.width, largest.height) == (1600, 1200)
    assert [p.width for p in sent.photo] == [90, 320, 800, 1280, 1600]
    assert emu.call_count("sendPhoto") == 1

    again = await bot.send_photo(user.id, largest.file_id)
    assert again.photo and again.photo[-1].file_unique_id == largest.file_unique_id

    file = await bot.get_file(largest.file_id)
    assert file.file_path and file.file_size == len(data)
    downloaded = await bot.download_file(file.file_path)
    assert downloaded is not None and downloaded.read() == data
    thumb = await bot.get_file(sent.photo[0].file_id)
    assert thumb.file_path
    small = await bot.download_file(thumb.file_path)
    assert small is not None and small.read()[:2] == b"\xff\xd8"
    assert emu.file_bytes(emu.last_message(user.id)) == data

    caption = await bot.edit_message_caption(
        chat_id=user.id, message_id=sent.message_id, caption="Done", reply_markup=keyboard(("Again", "again"))
    )
    assert isinstance(caption, Message) and caption.caption == "Done"
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_photo(user.id, "AgACnope")

    other = sample_image(200, 100)
    media = InputMediaPhoto(media=BufferedInputFile(other, "other.png"), caption="New")
    replaced = await bot.edit_message_media(media, chat_id=user.id, message_id=sent.message_id)
    assert isinstance(replaced, Message) and replaced.photo and replaced.photo[-1].width == 200
    assert replaced.caption == "New" and replaced.reply_markup is None
    same = InputMediaPhoto(media=replaced.photo[-1].file_id, caption="New")
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_media(same, chat_id=user.id, message_id=sent.message_id)


async def test_upload_size_limit(user: EmulatedUser) -> None:
    async with BotAPIEmulator(max_upload_bytes=10_000) as small:
        target = small.user(user_id=user.id)
        bot = make_bot(small)
        try:
            with pytest.raises(TelegramEntityTooLarge):
                await bot.send_document(target.id, BufferedInputFile(b"x" * 20_000, "big.bin"))
            await bot.send_document(target.id, BufferedInputFile(b"x" * 5_000, "ok.bin"))
        finally:
            await bot.session.close()


async def test_photo_limits(bot: Bot, user: EmulatedUser) -> None:
    wide = sample_image(9000, 1200, "PNG")
    with pytest.raises(TelegramBadRequest, match="PHOTO_INVALID_DIMENSIONS"):
        await bot.send_photo(user.id, BufferedInputFile(wide, "wide.png"))
    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(user.id, BufferedInputFile(b"not an image", "x.jpg"))
    with pytest.raises(TelegramBadRequest, match="PHOTO_SAVE_FILE_INVALID"):
        await bot.send_photo(user.id, BufferedInputFile(b"\xff" * (10 * 1024 * 1024 + 1), "big.jpg"))
    # the same wide image is fine as a document
    doc = await bot.send_document(user.id, BufferedInputFile(wide, "wide.png"))
    assert doc.document and doc.document.file_name == "wide.png" and doc.document.mime_type == "image/png"


async def test_document_video_animation_media_group(emu: BotAPIEmulator, bot: Bot, user: EmulatedUser) -> None:
    doc = await bot.send_document(user.id, BufferedInputFile(b"%PDF-1.4 test", "report.pdf"), caption="PDF")
    assert doc.document and doc.document.file_name == "report.pdf"
    assert doc.document.mime_type == "application/pdf"
    video = await bot.send_video(user.id, BufferedInputFile(sample_mp4(640, 360, 5), "clip.mp4"))
    assert video.video and (video.video.width, video.video.height, video.video.duration) == (640, 360, 5)
    assert video.video.mime_type == "video/mp4"
    anim = await bot.send_animation(user.id, BufferedInputFile(sample_mp4(), "a.mp4"))
    assert anim.animation and anim.document

    media = [
        InputMediaPhoto(media=BufferedInputFile(sample_image(300, 200), "1.png"), caption="Album"),
        InputMediaPhoto(media=BufferedInputFile(sample_image(200, 300), "2.png")),
    ]
    album = await bot.send_media_group(user.id, media)
    assert len(album) == 2 and album[0].media_group_id and album[0].media_group_id == album[1].media_group_id
    assert album[0].caption == "Album" and album[1].photo and album[1].photo[-1].height == 300
    with pytest.raises(TelegramBadRequest):
        await bot.send_media_group(user.id, media[:1])
    assert emu.call_count("sendMediaGroup") == 2


# ---------------------------------------------------------------- polling, users, callbacks


async def test_polling_dispatcher_user_actions(emu: BotAPIEmulator, bot: Bot, user: EmulatedUser) -> None:
    dp = Dispatcher()
    seen: list[str] = []

    @dp.message(F.text.startswith("/start"))
    async def start(message: Message) -> None:
        seen.append(message.text or "")
        assert message.entities and message.entities[0].type == "bot_command"
        await message.answer("Welcome", reply_markup=keyboard(("Buy", "buy:1"), ("Help", "help")))

    @dp.message(F.media_group_id)
    async def album(message: Message) -> None:
        seen.append(f"album:{message.media_group_id}")

    @dp.message(F.photo)
    async def photo(message: Message, bot: Bot) -> None:
        assert message.photo
        file = await bot.get_file(message.photo[-1].file_id)
        assert file.file_path
        data = await bot.download_file(file.file_path)
        assert data is not None
        await message.answer(f"got {message.photo[-1].width}x{message.photo[-1].height} {len(data.read())}")

    @dp.message(F.document)
    async def document(message: Message) -> None:
        assert message.document
        await message.answer(f"doc {message.document.file_name} {message.document.mime_type}")

    @dp.message()
    async def echo(message: Message) -> None:
        kind = "sticker" if message.sticker else "voice" if message.voice else "video" if message.video else "text"
        await message.answer(f"{kind}: {message.text or ''}")

    @dp.callback_query()
    async def pressed(query: CallbackQuery) -> None:
        assert query.message is not None and query.chat_instance
        await query.answer(f"pressed {query.data}", show_alert=query.data == "help")
        if query.data == "buy:1" and isinstance(query.message, Message):
            await query.message.edit_text("Buying…")

    async with Polling(dp, bot):
        cmd = user.send_command("/start ref_ABC")
        welcome = await emu.await_message(user.id, lambda m: m["text"] == "Welcome")
        assert welcome["message_id"] == cmd["message_id"] + 1  # shared per-chat numbering
        assert seen == ["/start ref_ABC"]

        query = user.press(welcome, "Buy")
        answer = await emu.await_callback_answer(user.id, query["id"])
        assert answer["text"] == "pressed buy:1" and answer["show_alert"] is False
        edited = await emu.await_message(user.id, lambda m: m["text"] == "Buying…")
        assert "reply_markup" not in edited
        with pytest.raises(AssertionError, match="has no inline keyboard"):
            user.press(welcome, "Buy")

        user.press_raw(welcome["message_id"], "garbage:%%")
        assert (await emu.await_callback_answer(user.id))["data"] == "garbage:%%"

        user.send_photo(sample_image(3000, 1000, "PNG"), caption="edit me")
        reply = await user.reply(lambda m: m["text"].startswith("got"))
        assert reply["text"].startswith("got 2560x853")

        user.send_document(b"hello", "notes.txt", "text/plain")
        assert (await user.reply())["text"] == "doc notes.txt text/plain"

        async with emu.expect(user.id) as expectation:
            user.send_text("hello")
        assert expectation.message and expectation.message["text"] == "text: hello"

        cursor = emu.cursor(user.id)
        user.send_sticker()
        user.send_voice()
        user.send_video()
        texts = [(await cursor.anext())["text"] for _ in range(3)]
        assert texts == ["sticker: ", "voice: ", "video: "]

        items = user.send_album([sample_image(100, 100), sample_image(120, 100)], caption="two")
        assert items[0]["media_group_id"] == items[1]["media_group_id"]
        await eventually(lambda: len([s for s in seen if s.startswith("album")]) == 2)
        assert len({s for s in seen if s.startswith("album")}) == 1

        with pytest.raises(WaitTimeout, match="timed out"):
            await emu.await_message(user.id, lambda m: m["text"] == "never", timeout=0.2)
    # confirmed updates are gone after the dispatcher's next getUpdates with offset
    assert emu.pending_updates() == []
    assert emu.call_count("getUpdates") >= 2


async def test_get_updates_offset_and_allowed_updates(emu: BotAPIEmulator, bot: Bot, user: EmulatedUser) -> None:
    for text in ("a", "b", "c"):
        user.send_text(text)
    updates = await bot.get_updates(timeout=0)
    assert [u.message.text for u in updates if u.message] == ["a", "b", "c"]
    assert await bot.get_updates(offset=updates[1].update_id, timeout=0) == updates[1:]
    assert await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0) == []

    # long polling wakes up when a user writes from another thread
    threading.Timer(0.1, user.send_text, args=("late",)).start()
    late = await bot.get_updates(offset=updates[-1].update_id + 1, timeout=3)
    assert [u.message.text for u in late if u.message] == ["late"]

    # allowed_updates filters new updates
    await bot.get_updates(offset=late[-1].update_id + 1, timeout=0, allowed_updates=["callback_query"])
    user.send_text("filtered")
    msg = await bot.send_message(user.id, "k", reply_markup=keyboard(("x", "x")))
    user.press(msg, "x")
    only = await bot.get_updates(timeout=0)
    assert [u.callback_query is not None for u in only] == [True]

    user.send_text("one")
    user.send_text("two")
    assert len(await bot.get_updates(offset=-1, timeout=0, allowed_updates=[])) == 1


async def test_concurrent_get_updates_conflict(emu: BotAPIEmulator, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=3))
    await asyncio.sleep(0.1)
    second = asyncio.create_task(bot.get_updates(timeout=0))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
        await first
    assert await second == []


# ---------------------------------------------------------------- webhook


async def test_webhook_delivery_secret_retry_and_reply(emu: BotAPIEmulator, bot: Bot, user: EmulatedUser) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []
    statuses = [500, 200, 200]

    async def hook(request: web.Request) -> web.Response:
        body = await request.json()
        received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), body))
        status = statuses.pop(0) if statuses else 200
        if status == 200 and body.get("message", {}).get("text") == "reply please":
            return web.json_response({"method": "sendMessage", "chat_id": user.id, "text": "from webhook"})
        return web.json_response({}, status=status)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        assert await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret-token")
        info = await bot.get_webhook_info()
        assert info.url.endswith("/hook")
        with pytest.raises(TelegramConflictError, match="webhook is active"):
            await bot.get_updates()

        sent = user.send_text("hi")
        await eventually(lambda: len(received) >= 2)
        assert [secret for secret, _ in received] == ["s3cret-token", "s3cret-token"]
        assert received[0][1] == received[1][1]  # retried the same update after a 500
        assert received[0][1]["message"]["message_id"] == sent["message_id"]
        Update.model_validate(received[0][1])
        attempts = [d.status for d in emu.webhook_deliveries()]
        assert attempts == [500, 200]

        user.send_text("reply please")
        reply = await emu.await_message(user.id, lambda m: m["text"] == "from webhook")
        assert reply["chat"]["id"] == user.id
        assert emu.calls("sendMessage")[-1].via == "webhook_reply"

        assert await bot.delete_webhook(drop_pending_updates=True)
        assert (await bot.get_webhook_info()).url == ""
        assert await bot.get_updates(timeout=0) == []
    finally:
        await runner.cleanup()


async def test_aiogram_webhook_handler_reply_in_response(emu: BotAPIEmulator, bot: Bot, user: EmulatedUser) -> None:
    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> Any:
        return message.answer(f"webhook echo: {message.text}")  # returned, not awaited: sent in the HTTP reply

    app = web.Application()
    SimpleRequestHandler(dp, bot, handle_in_background=False, secret_token="tok").register(app, path="/wh")
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        await bot.set_webhook(f"http://127.0.0.1:{runner.addresses[0][1]}/wh", secret_token="tok")
        user.send_text("ping")
        reply = await user.reply()
        assert reply["text"] == "webhook echo: ping"
        assert emu.calls("sendMessage")[-1].via == "webhook_reply"
        await bot.set_webhook(f"http://127.0.0.1:{runner.addresses[0][1]}/wh", secret_token="wrong")
        user.send_text("rejected")
        await eventually(lambda: [d.status for d in emu.webhook_deliveries()][-4:] == [401, 401, 401, 401])
        assert "401" in ((await bot.get_webhook_info()).last_error_message or "")
    finally:
        await runner.cleanup()


# ---------------------------------------------------------------- payments


async def test_stars_invoice_payment_flow(emu: BotAPIEmulator, bot: Bot, user: EmulatedUser) -> None:
    dp = Dispatcher()
    credited: list[str] = []

    @dp.pre_checkout_query()
    async def checkout(query: PreCheckoutQuery) -> None:
        if query.invoice_payload == "bad":
            await query.answer(ok=False, error_message="Package is no longer available")
        else:
            await query.answer(ok=True)

    @dp.message(F.successful_payment)
    async def paid(message: Message) -> None:
        assert message.successful_payment
        credited.append(message.successful_payment.telegram_payment_charge_id)

    with pytest.raises(TelegramBadRequest, match="STARS_INVOICE_INVALID"):
        await bot.send_invoice(
            user.id,
            "Pack",
            "100 tokens",
            "p1",
            currency="XTR",
            prices=[LabeledPrice(label="a", amount=1), LabeledPrice(label="b", amount=2)],
        )
    with pytest.raises(TelegramBadRequest, match="PAYMENT_PROVIDER_INVALID"):
        await bot.send_invoice(
            user.id,
            "Pack",
            "100 tokens",
            "p1",
            currency="XTR",
            provider_token="tok",
            prices=[LabeledPrice(label="a", amount=1)],
        )

    invoice = await bot.send_invoice(
        user.id, "Pack", "100 tokens", "pack:100", currency="XTR", prices=[LabeledPrice(label="100 tokens", amount=50)]
    )
    assert invoice.invoice and invoice.invoice.total_amount == 50 and invoice.invoice.currency == "XTR"
    bad = await bot.send_invoice(
        user.id, "Pack", "gone", "bad", currency="XTR", prices=[LabeledPrice(label="x", amount=5)]
    )
    link = await bot.create_invoice_link(
        "Pack", "via link", "link:1", currency="XTR", prices=[LabeledPrice(label="x", amount=7)]
    )
    assert link.startswith("https://t.me/$")

    async with Polling(dp, bot):
        result = await user.apay(invoice)
        assert result.ok and result.charge_id and result.total_amount == 50
        assert result.message and result.message["successful_payment"]["invoice_payload"] == "pack:100"
        refused = await user.apay(bad)
        assert not refused.ok and refused.error_message == "Package is no longer available"
        via_link = await user.apay(link)
        assert via_link.ok and via_link.invoice_payload == "link:1"
        user.replay_payment(result)
        await eventually(lambda: len(credited) == 3)
    assert credited == [result.charge_id, via_link.charge_id, result.charge_id]
    assert len(emu.payments()) == 2

    assert await bot.refund_star_payment(user.id, result.charge_id)
    with pytest.raises(TelegramBadRequest, match="CHARGE_ALREADY_REFUNDED"):
        await bot.refund_star_payment(user.id, result.charge_id)


async def test_pre_checkout_timeout(emu: BotAPIEmulator, bot: Bot, user: EmulatedUser) -> None:
    invoice = await bot.send_invoice(
        user.id, "Pack", "d", "p", currency="XTR", prices=[LabeledPrice(label="x", amount=1)]
    )
    result = await user.apay(invoice, timeout=0.1)
    assert not result.ok and "timeout" in (result.error_message or "")
    query = emu.updates("pre_checkout_query")[-1]["pre_checkout_query"]
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_pre_checkout_query(query["id"], ok=True)


# ---------------------------------------------------------------- faults


async def test_fault_injection(emu: BotAPIEmulator, bot: Bot, user: EmulatedUser) -> None:
    emu.fail_next("sendMessage", 429, retry_after=7)
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(user.id, "hi")
    assert caught.value.retry_after == 7
    await bot.send_message(user.id, "hi")

    emu.fail_next("sendPhoto", 500, times=2)
    for _ in range(2):
        with pytest.raises(TelegramServerError):
            await bot.send_photo(user.id, BufferedInputFile(sample_image(10, 10), "p.png"))
    await bot.send_photo(user.id, BufferedInputFile(sample_image(10, 10), "p.png"))

    other = emu.user(first_name="Bob")
    emu.fail_next("sendMessage", 400, description="Bad Request: scripted", chat_id=other.id)
    await bot.send_message(user.id, "unaffected")
    with pytest.raises(TelegramBadRequest, match="scripted"):
        await bot.send_message(other.id, "x")

    emu.block_bot(user.id)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(user.id, "hello?")
    with pytest.raises(TelegramForbiddenError):
        await bot.send_chat_action(user.id, "typing")
    assert emu.updates("my_chat_member")[-1]["my_chat_member"]["new_chat_member"]["status"] == "kicked"
    user.unblock_bot()
    await bot.send_message(user.id, "back")

    emu.set_flood_control(per_chat=(2, 60.0))
    await bot.send_message(other.id, "1")
    await bot.send_message(other.id, "2")
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(other.id, "3")
    emu.clear_faults()
    assert emu.call_count("sendMessage", user.id, ok=False) == 2


# ---------------------------------------------------------------- misc methods


async def test_commands_menu_chat_and_actions(emu: BotAPIEmulator, bot: Bot, user: EmulatedUser) -> None:
    ru = [BotCommand(command="start", description="Начать"), BotCommand(command="balance", description="Баланс")]
    assert await bot.set_my_commands(ru, language_code="ru")
    assert await bot.set_my_commands(
        [BotCommand(command="help", description="Help")], scope=BotCommandScopeAllPrivateChats()
    )
    assert [c.command for c in await bot.get_my_commands(language_code="ru")] == ["start", "balance"]
    assert [c["command"] for c in emu.commands({"type": "all_private_chats"})] == ["help"]
    assert await bot.get_my_commands() == []
    assert await bot.delete_my_commands(language_code="ru")
    assert await bot.get_my_commands(language_code="ru") == []
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad-Command", description="x")])

    assert await bot.set_chat_menu_button(chat_id=user.id, menu_button=MenuButtonCommands())
    chat = await bot.get_chat(user.id)
    assert chat.id == user.id and chat.first_name == "Ann" and chat.type == "private"
    assert await bot.send_chat_action(user.id, "upload_photo")
    assert emu.chat_actions(user.id) == ["upload_photo"]
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(123456, "nobody")


def test_thread_mode_sync_waits() -> None:
    """The emulator in its own thread; the "bot" runs in another thread's loop; the test waits synchronously."""
    with BotAPIEmulator.run_in_thread() as emu:
        user = emu.user(first_name="Sync")

        async def bot_side() -> None:
            bot = make_bot(emu)
            try:
                updates = await bot.get_updates(timeout=5)
                assert updates and updates[0].message
                await bot.send_message(updates[0].message.chat.id, f"echo {updates[0].message.text}")
            finally:
                await bot.session.close()

        worker = threading.Thread(target=asyncio.run, args=(bot_side(),))
        worker.start()
        user.send_text("ping")
        assert emu.wait_for_message(user.id, timeout=5)["text"] == "echo ping"
        worker.join(5)
        with pytest.raises(WaitTimeout):
            emu.wait_for_message(user.id, timeout=0.1, since=emu.mark())


async def test_blocking_wait_in_emulator_loop_is_refused(emu: BotAPIEmulator) -> None:
    with pytest.raises(RuntimeError, match="deadlock"):
        emu.wait_for_message(1, timeout=0.1)


def test_standalone_cli_starts() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox.telegram", "--port", "0", "--token", "123:TEST", "--user", "5:Eve"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        token = proc.stdout.readline()
        assert first.startswith("Bot API emulator: http://127.0.0.1:")
        assert token.strip() == "Token: 123:TEST"
    finally:
        proc.terminate()
        proc.wait(5)
