"""Star subscriptions in the emulator, driven by the real aiogram Bot: links, renewals, cancelling, updates."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import SendInvoice
from aiogram.types import LabeledPrice, TransactionPartnerUser

from sandbox.telegram import BotAPIEmulator, EmulatedUser

from .payments_kit import Polling, Shop, eventually, make_bot

MONTH = 2_592_000


@pytest.fixture
async def emu() -> AsyncIterator[BotAPIEmulator]:
    async with BotAPIEmulator() as emulator:
        yield emulator


@pytest.fixture
async def bot(emu: BotAPIEmulator) -> AsyncIterator[Bot]:
    instance = make_bot(emu)
    yield instance
    await instance.session.close()


@pytest.fixture
def user(emu: BotAPIEmulator) -> EmulatedUser:
    return emu.user(user_id=111, first_name="Ann", username="ann")


async def _subscription_link(bot: Bot, payload: str = "plan:pro", amount: int = 250) -> str:
    return await bot.create_invoice_link(
        "Pro", "monthly", payload, "XTR", [LabeledPrice(label="month", amount=amount)], subscription_period=MONTH
    )


async def test_subscription_links_are_checked_like_telegram(bot: Bot, user: EmulatedUser) -> None:
    price = [LabeledPrice(label="month", amount=100)]
    assert (await _subscription_link(bot)).startswith("https://t.me/$")
    for period in (MONTH * 2, 86400, 1):
        with pytest.raises(TelegramBadRequest, match="SUBSCRIPTION_PERIOD_INVALID"):
            await bot.create_invoice_link("Pro", "d", "p", "XTR", price, subscription_period=period)
    with pytest.raises(TelegramBadRequest, match="SUBSCRIPTION_PERIOD_INVALID"):
        await bot.create_invoice_link("Pro", "d", "p", "RUB", price, provider_token="1:TEST", subscription_period=MONTH)
    with pytest.raises(TelegramBadRequest, match="SUBSCRIPTION_AMOUNT_INVALID"):
        await bot.create_invoice_link(
            "Pro", "d", "p", "XTR", [LabeledPrice(label="m", amount=10_001)], subscription_period=MONTH
        )
    assert await bot.create_invoice_link(
        "Pro", "d", "p", "XTR", [LabeledPrice(label="m", amount=10_000)], subscription_period=MONTH
    )
    # subscriptions are sold through links only: an invoice message with a period is refused
    with pytest.raises(TelegramBadRequest, match="SUBSCRIPTION_EXPORT_MISSING"):
        await bot(SendInvoice(chat_id=user.id, title="Pro", description="d", payload="p", currency="XTR",
                              prices=price, subscription_period=MONTH))  # fmt: skip
    assert user.messages() == []


async def test_first_charge_renewals_and_the_ledger(emu: BotAPIEmulator, bot: Bot, user: EmulatedUser) -> None:
    shop = Shop()
    link = await _subscription_link(bot)
    before = int(time.time())
    async with Polling(shop.dispatcher(), bot):
        first = await user.apay(link)
        assert first.ok and first.subscription_id
        await eventually(lambda: len(shop.paid) == 1)
        assert emu.subscription_will_renew(first) and user.subscription_will_renew(first.charge_id)
        second = user.renew_subscription(first)
        third = user.renew_subscription(second.charge_id)  # any charge of the subscription names it
        await eventually(lambda: len(shop.paid) == 3)

    charges = [m.successful_payment for m in shop.paid]
    assert all(c is not None for c in charges)
    one, two, three = charges  # type: ignore[misc]
    assert one.is_recurring and one.is_first_recurring
    assert before + MONTH <= one.subscription_expiration_date <= int(time.time()) + MONTH
    for renewal in (two, three):
        assert renewal.is_recurring and not renewal.is_first_recurring
        assert (renewal.invoice_payload, renewal.total_amount, renewal.currency) == ("plan:pro", 250, "XTR")
    assert two.subscription_expiration_date == one.subscription_expiration_date + MONTH
    assert three.subscription_expiration_date == one.subscription_expiration_date + 2 * MONTH
    ids = [c.telegram_payment_charge_id for c in charges]
    assert len(set(ids)) == 3 and ids == [first.charge_id, second.charge_id, third.charge_id]
    assert second.subscription_id == third.subscription_id == first.subscription_id
    assert emu.subscription(first.subscription_id).charge_ids == ids

    ledger = (await bot.get_star_transactions()).transactions
    assert [t.id for t in ledger] == ids
    for transaction in ledger:
        assert isinstance(transaction.source, TransactionPartnerUser)
        assert transaction.source.subscription_period == MONTH
        assert transaction.source.invoice_payload == "plan:pro"
    assert (await bot.get_my_star_balance()).amount == 750


async def test_the_bot_cancels_and_re_enables(emu: BotAPIEmulator, bot: Bot, user: EmulatedUser) -> None:
    shop = Shop()
    other = emu.user(user_id=222, first_name="Bob")
    link = await _subscription_link(bot)
    one_off = await bot.create_invoice_link("Pack", "d", "pack", "XTR", [LabeledPrice(label="x", amount=5)])
    async with Polling(shop.dispatcher(), bot):
        first = await user.apay(link)
        plain = await user.apay(one_off)
        charge = first.charge_id or ""

        with pytest.raises(TelegramBadRequest, match="CHARGE_ID_INVALID"):
            await bot.edit_user_star_subscription(user.id, "stx-unknown", True)
        with pytest.raises(TelegramBadRequest, match="CHARGE_ID_INVALID"):
            await bot.edit_user_star_subscription(other.id, charge, True)  # someone else's subscription
        with pytest.raises(TelegramBadRequest, match="CHARGE_ID_INVALID"):
            await bot.edit_user_star_subscription(user.id, plain.charge_id or "", True)  # not a subscription
        with pytest.raises(TelegramBadRequest, match="USER_ID_INVALID"):
            await bot.edit_user_star_subscription(999_999, charge, True)

        assert await bot.edit_user_star_subscription(user.id, charge, True)
        assert not emu.subscription_will_renew(charge)
        refused = user.renew_subscription(first)
        assert not refused.ok and refused.error_message == "subscription is canceled" and refused.charge_id is None
        with pytest.raises(ValueError, match="the bot cancelled"):
            user.restore_subscription(first)

        assert await bot.edit_user_star_subscription(user.id, charge, False)
        assert emu.subscription_will_renew(first)
        renewed = user.renew_subscription(first)
        assert renewed.ok
        # the renewal's charge id names the same subscription
        assert await bot.edit_user_star_subscription(user.id, renewed.charge_id or "", True)
        assert not emu.subscription_will_renew(first)
        await eventually(lambda: len(shop.paid) == 3)
    assert shop.subscription_updates == []  # the bot's own changes are not announced to it
    assert [e.data["is_canceled"] for e in emu.events("subscription_edit")] == [True, False, True]


async def test_the_user_cancels_restores_and_runs_out(emu: BotAPIEmulator, bot: Bot, user: EmulatedUser) -> None:
    shop = Shop()
    link = await _subscription_link(bot, payload="plan:basic")
    async with Polling(shop.dispatcher(), bot):
        first = await user.apay(link)
        second = await user.apay(link)  # a second, independent subscription from the same link
        assert first.subscription_id != second.subscription_id

        user.cancel_subscription(first)
        await eventually(lambda: len(shop.subscription_updates) == 1)
        assert not user.renew_subscription(first).ok
        assert user.renew_subscription(second).ok

        user.restore_subscription(first)
        await eventually(lambda: len(shop.subscription_updates) == 2)
        assert user.renew_subscription(first).ok

        user.fail_renewal(first)
        await eventually(lambda: len(shop.subscription_updates) == 3)
        lapsed = user.renew_subscription(first)
        assert not lapsed.ok and lapsed.error_message == "subscription is lapsed"
        with pytest.raises(ValueError, match="lapsed"):
            user.restore_subscription(first)
        await eventually(lambda: len(shop.paid) == 4)

    assert [u.state for u in shop.subscription_updates] == ["canceled", "active", "failed"]
    for update in shop.subscription_updates:
        assert (update.user.id, update.invoice_payload) == (user.id, "plan:basic")
    assert [s.state() for s in emu.subscriptions(user.id)] == ["lapsed", "active"]
    assert len(emu.updates("subscription")) == 3
    with pytest.raises(LookupError):
        emu.subscription("sub_unknown")


async def test_a_refunded_subscription_charge(emu: BotAPIEmulator, bot: Bot, user: EmulatedUser) -> None:
    shop = Shop()
    link = await _subscription_link(bot)
    async with Polling(shop.dispatcher(), bot):
        first = await user.apay(link)
        renewal = user.renew_subscription(first)
        user.refund_externally(renewal)
        await eventually(lambda: len(shop.refunded) == 1 and len(shop.paid) == 2)
    refunded = shop.refunded[0].refunded_payment
    assert refunded is not None and refunded.telegram_payment_charge_id == renewal.charge_id
    ledger = (await bot.get_star_transactions()).transactions
    assert [(t.id, t.source is not None) for t in ledger] == [
        (first.charge_id, True),
        (renewal.charge_id, True),
        (renewal.charge_id, False),
    ]
    assert (await bot.get_my_star_balance()).amount == 250
