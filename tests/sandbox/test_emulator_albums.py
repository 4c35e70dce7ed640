"""sendMediaGroup in the emulator behaves like Telegram's: an album of 2-10 photos/videos or of
documents only, one message per item sharing a media_group_id, no buttons on an album, and one item
Telegram refuses refuses the whole album (nothing is sent) — scripted with `refuse_upload`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import BufferedInputFile, InputMediaDocument, InputMediaPhoto

from sandbox.telegram import BotAPIEmulator, EmulatedUser, sample_image


@pytest.fixture
async def emu() -> AsyncIterator[BotAPIEmulator]:
    async with BotAPIEmulator() as emulator:
        yield emulator


@pytest.fixture
async def bot(emu: BotAPIEmulator) -> AsyncIterator[Bot]:
    instance = Bot(emu.token, session=AiohttpSession(api=TelegramAPIServer.from_base(emu.base_url)))
    yield instance
    await instance.session.close()


@pytest.fixture
def user(emu: BotAPIEmulator) -> EmulatedUser:
    return emu.user(user_id=222, first_name="Bo", language_code="en")


def photos(count: int, prefix: str = "v") -> list[InputMediaPhoto]:
    return [
        InputMediaPhoto(media=BufferedInputFile(sample_image(120 + n, 80), f"{prefix}-{n + 1}.png"))
        for n in range(count)
    ]


async def test_an_album_of_four_is_four_messages_of_one_group(emu, bot, user) -> None:
    media = photos(4)
    media[0] = InputMediaPhoto(media=media[0].media, caption="<b>four</b>", parse_mode="HTML")
    album = await bot.send_media_group(user.id, media)
    assert [m.message_id for m in album] == sorted(m.message_id for m in album) and len(album) == 4
    assert len({m.media_group_id for m in album}) == 1 and album[0].media_group_id
    assert album[0].caption == "four" and album[0].caption_entities[0].type == "bold"
    assert all(m.photo and m.reply_markup is None for m in album)
    stored = emu.messages(user.id)
    assert len(stored) == 4 and all("photo" in m for m in stored)


async def test_album_size_and_kinds_are_checked(emu, bot, user) -> None:
    with pytest.raises(TelegramBadRequest, match="2-10 items"):
        await bot.send_media_group(user.id, photos(1))
    with pytest.raises(TelegramBadRequest, match="2-10 items"):
        await bot.send_media_group(user.id, photos(11))
    docs = [InputMediaDocument(media=BufferedInputFile(b"%PDF-1.4 x", f"{n}.pdf")) for n in range(2)]
    with pytest.raises(TelegramBadRequest, match="DOCUMENT_GROUP_MIXED"):
        await bot.send_media_group(user.id, [*photos(1), docs[0]])
    album = await bot.send_media_group(user.id, docs)
    assert all(m.document for m in album)
    assert emu.messages(user.id) and len(emu.messages(user.id)) == 2


async def test_an_album_carries_no_buttons(emu, bot, user) -> None:
    """sendMediaGroup has no reply_markup: Telegram ignores one (as any unknown parameter)."""
    markup = '{"inline_keyboard": [[{"text": "x", "callback_data": "y"}]]}'
    url = f"{emu.base_url}/bot{emu.token}/sendMediaGroup"
    import aiohttp

    first, second = sample_image(40, 30), sample_image(30, 40)
    form = aiohttp.FormData()
    form.add_field("chat_id", str(user.id))
    form.add_field("media", '[{"type": "photo", "media": "attach://a"}, {"type": "photo", "media": "attach://b"}]')
    form.add_field("reply_markup", markup)
    form.add_field("a", first, filename="a.png", content_type="image/png")
    form.add_field("b", second, filename="b.png", content_type="image/png")
    async with aiohttp.ClientSession() as session, session.post(url, data=form) as response:
        body = await response.json()
    assert body["ok"] and len(body["result"]) == 2
    assert all("reply_markup" not in m for m in body["result"])
    assert all("reply_markup" not in m for m in emu.messages(user.id))


async def test_one_refused_item_refuses_the_album_and_its_file_everywhere(emu, bot, user) -> None:
    rule = emu.refuse_upload("-2.png", "IMAGE_PROCESS_FAILED")
    with pytest.raises(TelegramBadRequest) as caught:
        await bot.send_media_group(user.id, photos(3))
    assert 'failed to send message #2 with the error message "IMAGE_PROCESS_FAILED"' in caught.value.message
    assert emu.messages(user.id) == []  # nothing of the album was sent
    # The same file alone is refused too, as a photo and as a document; the others go through.
    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(user.id, BufferedInputFile(sample_image(), "v-2.png"))
    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_document(user.id, BufferedInputFile(sample_image(), "v-2.png"))
    sent = await bot.send_photo(user.id, BufferedInputFile(sample_image(), "v-3.png"))
    assert sent.photo and rule.refused == 3
    emu.clear_faults()
    album = await bot.send_media_group(user.id, photos(2))
    assert len(album) == 2


async def test_refusals_by_content_and_a_limited_number(emu, bot, user) -> None:
    bad = sample_image(33, 33)
    emu.refuse_upload(predicate=lambda name, data: data == bad, description="PHOTO_INVALID_DIMENSIONS", times=1)
    with pytest.raises(TelegramBadRequest, match="PHOTO_INVALID_DIMENSIONS"):
        await bot.send_photo(user.id, BufferedInputFile(bad, "any.png"))
    sent = await bot.send_photo(user.id, BufferedInputFile(bad, "any.png"))  # used up
    assert sent.photo
    with pytest.raises(ValueError):
        emu.refuse_upload()
