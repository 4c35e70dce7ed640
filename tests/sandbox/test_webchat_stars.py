"""The web chat shows subscription charges and refunds as service lines (real chromium, like a person)."""

from __future__ import annotations

import json
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from sandbox.telegram import BotAPIEmulator
from tests.browser import chromium, skip_reason

pytestmark = [pytest.mark.slow, pytest.mark.skipif(skip_reason() is not None, reason=str(skip_reason()))]
SHOTS = Path(tempfile.gettempdir()) / "webchat-screenshots"
WAIT = 10_000  # ms


def _call(emu: BotAPIEmulator, method: str, **params: Any) -> Any:
    request = urllib.request.Request(
        f"{emu.base_url}/bot{emu.token}/{method}",
        data=json.dumps(params).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)["result"]


def test_subscription_and_refund_service_lines() -> None:
    from playwright.sync_api import expect

    with BotAPIEmulator(bot_first_name="GenStudio") as emu:
        user = emu.user(first_name="Ann", language_code="en")
        link = _call(
            emu,
            "createInvoiceLink",
            title="Pro",
            description="monthly",
            payload="plan:pro",
            currency="XTR",
            prices=[{"label": "month", "amount": 250}],
            subscription_period=2_592_000,
        )
        record = emu.start_pre_checkout(user.id, emu.resolve_invoice(link, user.id))
        assert _call(emu, "answerPreCheckoutQuery", pre_checkout_query_id=record.id, ok=True)
        first = emu.finish_payment(record)
        user.renew_subscription(first)
        user.refund_externally(first)

        with chromium() as browser:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{emu.webchat_url}#user={user.id}")
            service = page.locator("[data-testid=message].service")
            expect(service.filter(has_text="for a subscription until")).to_have_count(1, timeout=WAIT)
            expect(service.filter(has_text="(subscription renewed) until")).to_have_count(1)
            expect(service.filter(has_text="Payment of ⭐ 250 refunded")).to_have_count(1)
            SHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SHOTS / "stars-service-lines.png"))
            assert errors == []
