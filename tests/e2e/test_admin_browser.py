"""The ledger and payments lists in a real browser at 1400 px: no horizontal scrolling, neither of the
page nor of the table's own scrolling box, with the longest values the columns can hold (descriptions
of 255 characters, long charge ids and promocodes, long names). Debian's chromium through Playwright
(tests/browser.py), the admin served by pytest-django's live server, logged in through the login form.
"""

from __future__ import annotations

import os
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
from django.urls import reverse

from tests.browser import chromium, skip_reason

pytestmark = [pytest.mark.slow, pytest.mark.skipif(skip_reason() is not None, reason=str(skip_reason()))]

WIDTH, HEIGHT = 1400, 900
PASSWORD = "browser-admin-password"
SHOTS = Path(os.environ.get("SCREENSHOTS_DIR") or Path(tempfile.gettempdir()) / "admin-screenshots")
LONG_WORDS = "compensation for the failed video of ticket 4711, after the user wrote to support twice; " * 4
OVERFLOW_JS = """() => {
    const page = document.scrollingElement;
    const table = document.querySelector('#result_list');
    const boxes = [];
    // The boxes that would scroll: the table's own container (unfold's overflow-x-auto, with simplebar's
    // wrapper inside it) and any other scrolling ancestor.
    for (let el = table && table.parentElement; el && el !== document.body; el = el.parentElement) {
        const scrolls = ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
        if ((scrolls || el.classList.contains('overflow-x-auto')) && el.scrollWidth > el.clientWidth + 1) {
            boxes.push(`${el.tagName}.${el.className}: ${el.scrollWidth} > ${el.clientWidth}`);
        }
    }
    return {pageWidth: page.scrollWidth, viewport: window.innerWidth,
            rows: table ? table.querySelectorAll('tbody tr').length : 0,
            tableWidth: table ? table.scrollWidth : 0, overflowing: boxes};
}"""


@pytest.fixture
def long_rows(transactional_db, make_user, django_user_model):
    """Ledger rows and payments with the longest values their columns show."""
    from botapp.models import Payment, Promocode, TopUpPackage
    from botapp.services.balance import BalanceService
    from botapp.services.payments import PaymentService
    from botapp.services.promo import PromoService

    django_user_model.objects.create_superuser("operator", password=PASSWORD)
    code = "SPRING" + "X" * 58  # 64 characters, the longest a code can be
    Promocode.objects.create(code=code, kind=Promocode.Kind.TOPUP_BONUS, value=Decimal("10"), max_uses=None)
    package = TopUpPackage.objects.filter(is_active=True).first()
    for n in range(6):
        user = make_user(
            balance=50,
            username=f"a_rather_long_username_{n:02d}"[:32],
            first_name="Maximilian-Alexander " * 3,
        )
        PromoService.redeem(user_id=user.pk, code=code)
        payment = PaymentService.create_invoice(user_id=user.pk, package_id=package.pk)
        PaymentService.complete(
            invoice_payload=payment.invoice_payload,
            provider_charge_id=f"stxAbCdEfGhIjKlMnOpQrStUvWxYz0123456789_{n}_" + "q" * 45,  # 90: the key holds ~100
            total_amount=int(payment.amount),
            currency=payment.currency,
        )
        BalanceService.admin_adjust(
            user_id=user.pk, amount=Decimal("-1.25"), reason=LONG_WORDS, key=f"long:{n}", notify=False
        )
        BalanceService.admin_adjust(
            user_id=user.pk,
            amount=Decimal("12345.75"),
            reason="x" * 255,  # no space to wrap at
            key=f"long-word:{n}",
            bucket="bonus",
            notify=False,
        )
    assert Payment.objects.filter(promocode__code=code).exists()


@pytest.mark.parametrize("language", ["en", "ru"])  # Russian labels are longer
def test_ledger_and_payments_fit_1400px_without_scrolling(live_server, long_rows, settings, language):
    settings.LANGUAGE_CODE = language  # as ADMIN_LANGUAGE sets it
    with chromium(viewport={"width": WIDTH, "height": HEIGHT}) as browser:
        page = browser.new_page()
        page.goto(live_server.url + reverse("admin:login"))
        page.fill("input[name=username]", "operator")
        page.fill("input[name=password]", PASSWORD)
        page.click("[type=submit]")
        page.wait_for_url(live_server.url + reverse("admin:index"))

        for name in ("transaction", "payment"):
            page.goto(live_server.url + reverse(f"admin:botapp_{name}_changelist"))
            page.wait_for_selector("#result_list")
            measured = page.evaluate(OVERFLOW_JS)
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / f"admin-{name}-list-{language}.png"), full_page=True)
            assert measured["rows"] >= 6, measured
            assert measured["pageWidth"] <= measured["viewport"] == WIDTH, (name, measured)
            assert measured["overflowing"] == [], (name, measured["overflowing"])
            # The shortened values keep the whole text in their tooltip.
            assert page.locator("#result_list span[title]").count() >= 6, name
