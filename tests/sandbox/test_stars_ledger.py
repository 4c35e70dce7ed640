"""The emulator's Stars ledger, driven by the real aiogram Bot: getStarTransactions, refunds, getMyStarBalance."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import LabeledPrice, StarTransaction, TransactionPartnerUser

from sandbox.telegram import BotAPIEmulator, EmulatedUser, PaymentResult

from .payments_kit import Polling, Shop, eventually, make_bot


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


async def _stars_invoice(bot: Bot, user: EmulatedUser, payload: str, amount: int) -> object:
    return await bot.send_invoice(
        user.id, "Pack", "tokens", payload, currency="XTR", prices=[LabeledPrice(label="x", amount=amount)]
    )


def _partner(transaction: StarTransaction, side: str) -> TransactionPartnerUser:
    partner = getattr(transaction, side)
    assert isinstance(partner, TransactionPartnerUser), partner
    return partner


async def test_payments_and_refunds_in_the_ledger(emu: BotAPIEmulator, bot: Bot, user: EmulatedUser) -> None:
    shop = Shop()
    other = emu.user(user_id=222, first_name="Bob")
    first = await _stars_invoice(bot, user, "pack:10", 10)
    second = await _stars_invoice(bot, user, "pack:20", 20)
    link = await bot.create_invoice_link("Pack", "via link", "pack:30", "XTR", [LabeledPrice(label="x", amount=30)])
    async with Polling(shop.dispatcher(), bot):
        paid = [await user.apay(first), await user.apay(second), await user.apay(link)]
        assert all(p.ok and p.charge_id for p in paid)
        await eventually(lambda: len(shop.paid) == 3)

        # the bot refunds the first payment itself; Telegram support refunds the second one
        with pytest.raises(TelegramBadRequest, match="CHARGE_NOT_FOUND"):
            await bot.refund_star_payment(other.id, paid[0].charge_id)
        assert await bot.refund_star_payment(user.id, paid[0].charge_id)
        refund_message = user.refund_externally(paid[1])
        assert refund_message["refunded_payment"]["telegram_payment_charge_id"] == paid[1].charge_id
        await eventually(lambda: len(shop.refunded) == 1)
    assert not shop.refunded[0].successful_payment
    refunded = shop.refunded[0].refunded_payment
    assert refunded is not None
    assert (refunded.currency, refunded.total_amount, refunded.invoice_payload) == ("XTR", 20, "pack:20")
    assert refunded.telegram_payment_charge_id == paid[1].charge_id

    with pytest.raises(TelegramBadRequest, match="CHARGE_ALREADY_REFUNDED"):
        await bot.refund_star_payment(user.id, paid[1].charge_id)
    with pytest.raises(TelegramBadRequest, match="CHARGE_NOT_FOUND"):
        await bot.refund_star_payment(user.id, "stx-no-such-charge")
    with pytest.raises(ValueError, match="already refunded"):
        emu.refund_externally(paid[0].charge_id or "")

    ledger = (await bot.get_star_transactions()).transactions
    assert [t.id for t in ledger] == [p.charge_id for p in paid] + [paid[0].charge_id, paid[1].charge_id]
    assert [t.amount for t in ledger] == [10, 20, 30, 10, 20]
    for transaction, payment in zip(ledger[:3], paid, strict=True):
        partner = _partner(transaction, "source")
        assert transaction.receiver is None
        assert (partner.transaction_type, partner.user.id) == ("invoice_payment", user.id)
        assert partner.invoice_payload == payment.invoice_payload
        assert partner.subscription_period is None
    for transaction in ledger[3:]:
        assert transaction.source is None
        assert _partner(transaction, "receiver").user.id == user.id
    dates = [t.date for t in ledger]
    assert dates == sorted(dates)
    assert ledger[3].model_dump()["receiver"]["invoice_payload"] == "pack:10"

    balance = await bot.get_my_star_balance()
    assert balance.amount == 30 == emu.star_balance()
    assert [e["id"] for e in emu.star_transactions()] == [t.id for t in ledger]


async def test_paging_through_250_transactions(emu: BotAPIEmulator, bot: Bot, user: EmulatedUser) -> None:
    shop = Shop()
    link = await bot.create_invoice_link("Pack", "tokens", "bulk", "XTR", [LabeledPrice(label="x", amount=1)])
    results: list[PaymentResult] = []
    async with Polling(shop.dispatcher(), bot):
        for _ in range(5):
            batch = await asyncio.gather(*(user.apay(link) for _ in range(50)))
            results.extend(batch)
        await eventually(lambda: len(shop.paid) == 250, within=20)
    assert all(r.ok for r in results) and len({r.charge_id for r in results}) == 250

    pages = [(await bot.get_star_transactions(offset=offset, limit=100)).transactions for offset in (0, 100, 200)]
    assert [len(page) for page in pages] == [100, 100, 50]
    ids = [t.id for page in pages for t in page]
    assert len(set(ids)) == 250
    assert ids == [e["id"] for e in emu.star_transactions()]
    assert set(ids) == {r.charge_id for r in results}
    assert (await bot.get_star_transactions(offset=250)).transactions == []
    assert len((await bot.get_star_transactions()).transactions) == 100  # the default limit
    middle = (await bot.get_star_transactions(offset=137, limit=3)).transactions
    assert [t.id for t in middle] == ids[137:140]

    # out-of-range values are clamped by the Bot API server, not refused
    url = f"{emu.base_url}/bot{emu.token}/getStarTransactions"
    async with aiohttp.ClientSession() as http:
        for query, expected in ({"limit": 0}, 1), ({"limit": 1000}, 100), ({"offset": -5, "limit": 2}, 2):
            async with http.get(url, params=query) as response:
                body = await response.json()
            assert body["ok"] and len(body["result"]["transactions"]) == expected, (query, body)
        async with http.get(url, params={"offset": -5, "limit": 2}) as response:
            assert [t["id"] for t in (await response.json())["result"]["transactions"]] == ids[:2]


async def test_card_payments_are_not_stars(emu: BotAPIEmulator, bot: Bot, user: EmulatedUser) -> None:
    shop = Shop()
    invoice = await bot.send_invoice(
        user.id, "Box", "a box", "box", "RUB", [LabeledPrice(label="x", amount=9900)], provider_token="381764678:TEST"
    )
    async with Polling(shop.dispatcher(), bot):
        assert (await user.apay(invoice)).ok
        await eventually(lambda: len(shop.paid) == 1)
    assert (await bot.get_star_transactions()).transactions == []
    with pytest.raises(ValueError, match="Telegram Stars"):
        emu.refund_externally(shop.paid[0].successful_payment.telegram_payment_charge_id)  # type: ignore[union-attr]


async def test_the_bots_own_refund_can_announce_itself() -> None:
    async with BotAPIEmulator(bot_refund_message=True) as emu:
        bot = make_bot(emu)
        user = emu.user(first_name="Ann")
        shop = Shop()
        try:
            link = await bot.create_invoice_link("Pack", "d", "p", "XTR", [LabeledPrice(label="x", amount=5)])
            async with Polling(shop.dispatcher(), bot):
                result = await user.apay(link)
                await bot.refund_star_payment(user.id, result.charge_id or "")
                await eventually(lambda: len(shop.refunded) == 1)
        finally:
            await bot.session.close()
    assert shop.refunded[0].refunded_payment.telegram_payment_charge_id == result.charge_id  # type: ignore[union-attr]
    assert [e.data["by"] for e in emu.events("refund")] == ["bot"]
