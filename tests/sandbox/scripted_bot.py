"""A tiny scripted aiogram bot for the web chat tests: each command shows one thing the page must render."""

from __future__ import annotations

import asyncio
import contextlib
import threading

from aiogram import Bot, Dispatcher, F
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import (
    BotCommand,
    BotCommandScopeDefault,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    KeyboardButton,
    LabeledPrice,
    Message,
    MessageEntity,
    PreCheckoutQuery,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from sandbox.telegram import BotAPIEmulator, sample_image

#: Texts with HTML a page must never run: escaped tags become literal text, the javascript: link stays inert.
XSS_HTML = (
    "Try: &lt;script&gt;window.__xss=1&lt;/script&gt; and "
    '&lt;img src=x onerror="window.__xss=2"&gt; and '
    '<a href="javascript:window.__xss=3">evil link</a> and <a href="https://example.com/">good link</a>'
)
XSS_RAW = "<script>window.__xss=4</script><img src=x onerror=window.__xss=5><b onclick=window.__xss=7>bold?</b>"
XSS_ENTITY_TEXT = "click here please"

COMMANDS_EN = [
    BotCommand(command="start", description="Start the bot"),
    BotCommand(command="photo", description="Send a photo"),
    BotCommand(command="invoice", description="Buy tokens"),
]
COMMANDS_RU = [
    BotCommand(command="start", description="Запустить бота"),
    BotCommand(command="photo", description="Прислать фото"),
    BotCommand(command="invoice", description="Купить токены"),
]


def start_keyboard(username: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text="Press me", callback_data="press"),
                InlineKeyboardButton(text="Alert", callback_data="alert"),
            ],
            [InlineKeyboardButton(text="Edit me", callback_data="edit")],
            [
                InlineKeyboardButton(text="Docs", url="https://example.com/docs"),
                InlineKeyboardButton(text="Deep link", url=f"https://t.me/{username}?start=deep42"),
            ],
        ]
    )


def build_dispatcher(username: str) -> Dispatcher:
    dp = Dispatcher()

    @dp.message(CommandStart())
    async def start(message: Message, command: CommandObject) -> None:
        name = message.from_user.first_name if message.from_user else "?"
        await message.answer(
            f"Hello, <b>{name}</b>! payload=<code>{command.args or '-'}</code>\n"
            f"<i>italic</i> <u>under</u> <s>struck</s> <tg-spoiler>secret</tg-spoiler>\n"
            f'<blockquote>a quote</blockquote><pre><code class="language-python">print(1)</code></pre>',
            reply_markup=start_keyboard(username),
        )
        await message.answer(
            "Pick one below",
            reply_markup=ReplyKeyboardMarkup(
                keyboard=[[KeyboardButton(text="Ping"), KeyboardButton(text="Photo")]],
                resize_keyboard=True,
                one_time_keyboard=False,
                input_field_placeholder="Choose a button",
            ),
        )

    @dp.message(F.text == "Ping")
    async def ping(message: Message, bot: Bot) -> None:
        await bot.send_chat_action(message.chat.id, "typing")
        await asyncio.sleep(1.5)
        await message.answer("Pong", reply_markup=ReplyKeyboardRemove())

    @dp.message(Command("photo"))
    @dp.message(F.text == "Photo")
    async def photo(message: Message, bot: Bot) -> None:
        await bot.send_chat_action(message.chat.id, "upload_photo")
        await asyncio.sleep(0.3)
        image = BufferedInputFile(sample_image(640, 400, color=(80, 140, 220)), "photo.jpg")
        buttons = [InlineKeyboardButton(text="Swap photo", callback_data="swap")]
        await message.answer_photo(
            image, caption="A <i>sample</i> photo", reply_markup=InlineKeyboardMarkup(inline_keyboard=[buttons])
        )

    @dp.message(Command("xss"))
    async def xss(message: Message) -> None:
        await message.answer(XSS_HTML)
        await message.answer(XSS_RAW, parse_mode=None)
        await message.answer(
            XSS_ENTITY_TEXT,
            parse_mode=None,
            entities=[MessageEntity(type="text_link", offset=0, length=5, url="javascript:window.__xss=6")],
        )

    @dp.message(Command("invoice"))
    @dp.message(Command("refused"))
    async def invoice(message: Message, command: CommandObject) -> None:
        refused = command.command == "refused"
        await message.answer_invoice(
            title="Tokens",
            description="100 tokens for the sandbox",
            payload="refuse" if refused else "ok",
            currency="XTR",
            prices=[LabeledPrice(label="100 tokens", amount=50)],
        )

    @dp.pre_checkout_query()
    async def pre_checkout(query: PreCheckoutQuery) -> None:
        if query.invoice_payload == "refuse":
            await query.answer(ok=False, error_message="Sorry, sold out")
        else:
            await query.answer(ok=True)

    @dp.message(F.successful_payment)
    async def paid(message: Message) -> None:
        assert message.successful_payment is not None
        await message.answer(f"Thanks! Paid {message.successful_payment.total_amount} stars")

    @dp.message(F.photo)
    async def got_photo(message: Message) -> None:
        largest = message.photo[-1] if message.photo else None
        album = " in an album" if message.media_group_id else ""
        caption = f" caption={message.caption}" if message.caption else ""
        size = f"{largest.width}x{largest.height}" if largest else "?"
        await message.answer(f"Got a photo {size}{album}{caption}")

    @dp.callback_query(F.data == "press")
    async def pressed(query: CallbackQuery) -> None:
        await query.answer("Pressed!")
        if query.message is not None:
            await query.message.answer("You pressed the button")

    @dp.callback_query(F.data == "alert")
    async def alert(query: CallbackQuery) -> None:
        await query.answer("This is an alert", show_alert=True)

    @dp.callback_query(F.data.in_({"edit", "again"}))
    async def edit(query: CallbackQuery) -> None:
        await query.answer()
        if isinstance(query.message, Message):
            again = query.data == "again"
            await query.message.edit_text(
                "Edited <i>twice</i>" if again else "Edited <i>in place</i>",
                reply_markup=InlineKeyboardMarkup(
                    inline_keyboard=[[InlineKeyboardButton(text="Edit again", callback_data="again")]]
                ),
            )

    @dp.callback_query(F.data == "swap")
    async def swap(query: CallbackQuery) -> None:
        await query.answer()
        if isinstance(query.message, Message):
            image = BufferedInputFile(sample_image(400, 400, color=(200, 60, 60)), "swapped.jpg")
            await query.message.edit_media(InputMediaPhoto(media=image, caption="Swapped <b>photo</b>"))

    @dp.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(f"You said: {message.text}")

    return dp


class ScriptedBot:
    """The bot above, long polling the emulator from its own thread (``with ScriptedBot(emu):``)."""

    def __init__(self, emu: BotAPIEmulator) -> None:
        self.emu = emu
        self.username = str(emu.bot_user["username"])
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._dp = build_dispatcher(self.username)

    def __enter__(self) -> ScriptedBot:
        self._thread = threading.Thread(target=self._run, name="scripted-bot", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the scripted bot did not start")
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        loop.run_until_complete(self._main())
        loop.close()

    async def _main(self) -> None:
        session = AiohttpSession(api=TelegramAPIServer.from_base(self.emu.base_url))
        bot = Bot(self.emu.token, session=session, default=DefaultBotProperties(parse_mode="HTML"))
        await bot.set_my_commands(COMMANDS_EN, scope=BotCommandScopeDefault())
        await bot.set_my_commands(COMMANDS_RU, scope=BotCommandScopeDefault(), language_code="ru")
        self._ready.set()
        try:
            await self._dp.start_polling(bot, handle_signals=False, polling_timeout=1)
        finally:
            await session.close()

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._dp.stop_polling(), self._loop).result(5)
        if self._thread is not None:
            self._thread.join(10)
