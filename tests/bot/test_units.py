"""Small pieces without the emulator: formatting, callback data sizes, keyboards, the once-store."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from botapp.callbacks import (
    GenAction,
    GenCb,
    HistoryAction,
    HistoryCb,
    MenuAction,
    MenuCb,
    PayAction,
    PayCb,
    PayMethod,
    ResultAction,
    ResultCb,
    SettingsAction,
    SettingsCb,
    pack_ratio,
    unpack_ratio,
)
from botapp.keyboards import fmt_tokens, main_menu, result_keyboard, topup_keyboard
from botapp.middlewares import MemoryOnceStore


@pytest.mark.parametrize(
    ("value", "text"),
    [(Decimal("1.50"), "1.5"), (Decimal("10.00"), "10"), (Decimal("0.05"), "0.05"), (19, "19"), ("2.5", "2.5")],
)
def test_fmt_tokens(value, text):
    assert fmt_tokens(value) == text


def test_callback_data_fits_telegram_limit():
    biggest = [
        MenuCb(action=MenuAction.PROMO),
        GenCb(action=GenAction.GENERATE, value="A" * 11),
        GenCb(action=GenAction.RATIO, value=pack_ratio("21:9")),
        ResultCb(action=ResultAction.ANIMATE, request_id=2**62, index=9),
        HistoryCb(action=HistoryAction.RESEND, request_id=2**62),
        SettingsCb(action=SettingsAction.RESOLUTION, value="1080p"),
        PayCb(action=PayAction.METHOD, package_id=2**62, method=PayMethod.STARS),
    ]
    for data in biggest:
        packed = data.pack()
        assert len(packed.encode()) <= 64, packed
        assert type(data).unpack(packed) == data


def test_ratio_packing_round_trip():
    assert unpack_ratio(pack_ratio("16:9")) == "16:9"
    assert ":" not in pack_ratio("16:9")


def test_pay_callback_without_method():
    packed = PayCb(action=PayAction.PACKAGE, package_id=3).pack()
    assert PayCb.unpack(packed).method is None


def test_result_keyboard_flags():
    from botapp.models import GenRequest

    image = GenRequest(pk=5, kind="image")
    texts = lambda markup: [b.text for row in markup.inline_keyboard for b in row]  # noqa: E731
    assert texts(result_keyboard(image, "en", can_edit=False, can_animate=True)) == [
        "🔁 Again",
        "🎬 Animate",
        "🏠 Menu",
    ]
    assert texts(result_keyboard(image, "ru", can_edit=True, can_animate=False)) == [
        "🔁 Ещё раз",
        "✏️ Изменить",
        "🏠 Меню",
    ]
    edit = result_keyboard(image, "en", index=2, can_edit=True, can_animate=True).inline_keyboard[1][0]
    assert ResultCb.unpack(edit.callback_data) == ResultCb(action=ResultAction.EDIT, request_id=5, index=2)


def test_topup_keyboard_suggests_a_package():
    from botapp.models import TopUpPackage

    package = TopUpPackage(pk=4, tokens=Decimal("50"), price_stars=225)
    markup = topup_keyboard("en", suggested=package)
    first = markup.inline_keyboard[0][0]
    assert first.text == "⭐ Buy 50 tok. for 225 ⭐"
    assert PayCb.unpack(first.callback_data) == PayCb(action=PayAction.PACKAGE, package_id=4)
    assert [b.text for b in markup.inline_keyboard[-1]] == ["🏠 Menu"]


def test_cached_keyboards_are_shared_per_language():
    assert main_menu("ru") is main_menu("ru")
    assert main_menu("ru") is not main_menu("en")


def test_memory_once_store_expires():
    async def scenario() -> list[bool]:
        store = MemoryOnceStore()
        results = [await store.first_time("a", 0.05), await store.first_time("a", 0.05)]
        await asyncio.sleep(0.06)
        results.append(await store.first_time("a", 0.05))
        results.append(await store.first_time("b", 10))
        return results

    assert asyncio.run(scenario()) == [True, False, True, True]


def test_memory_once_store_is_bounded():
    async def scenario() -> int:
        store = MemoryOnceStore(max_size=100)
        for i in range(1000):
            await store.first_time(str(i), 60)
        return len(store._seen)

    assert asyncio.run(scenario()) <= 100


def test_polling_keeps_the_per_user_lock_in_process_and_the_rest_in_redis():
    """runbot is the only consumer of updates: its events isolation needs no Redis round trips; a web
    process (webhook; several may run) shares the lock through Redis. The client is never connected."""
    from aiogram.fsm.storage.memory import SimpleEventIsolation
    from aiogram.fsm.storage.redis import RedisEventIsolation, RedisStorage

    from botapp.bot import create_backends
    from botapp.middlewares import RedisOnceStore, RedisThrottleStore

    polling = create_backends(redis_url="redis://127.0.0.1:1/0", prefix="t", polling=True)
    webhook = create_backends(redis_url="redis://127.0.0.1:1/0", prefix="t")
    assert isinstance(polling.isolation, SimpleEventIsolation)
    assert isinstance(webhook.isolation, RedisEventIsolation)
    for backends in (polling, webhook):
        assert isinstance(backends.storage, RedisStorage)
        assert isinstance(backends.once, RedisOnceStore) and isinstance(backends.throttle, RedisThrottleStore)
