"""The page a payment's ``confirmation_url`` opens: a person pays or cancels, then goes back to ``return_url``.

Only for using the sandbox in a browser (``make run``); tests call ``fake.pay(id)`` / ``fake.cancel(id)``.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .server import FakeYooKassa

CHECKOUT_PATH = "/checkout/payments/v2/contract"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fake YooKassa checkout</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; background: #f3f4f8; display: grid; place-items: center;
       min-height: 100vh; margin: 0; }}
.card {{ background: #fff; border-radius: 16px; padding: 28px; width: 340px; box-shadow: 0 4px 24px #0001; }}
.amount {{ font-size: 32px; font-weight: 700; margin: 8px 0 4px; }}
.muted {{ color: #667; font-size: 14px; }}
button {{ width: 100%; padding: 12px; border: 0; border-radius: 10px; font-size: 16px; margin-top: 12px;
         cursor: pointer; }}
.pay {{ background: #7b61ff; color: #fff; }} .cancel {{ background: #eee; }}
</style></head><body><div class="card" data-testid="checkout">
<div class="muted">Fake YooKassa · test shop {shop}</div>
<div class="amount" data-testid="amount">{value} {currency}</div>
<div data-testid="description">{description}</div>
<div class="muted" data-testid="status">Status: {status}</div>
{buttons}
</div></body></html>"""

BUTTONS = """<form method="post" action="{path}/pay?orderId={pid}">
<button class="pay" data-testid="pay">Pay</button></form>
<form method="post" action="{path}/cancel?orderId={pid}">
<button class="cancel" data-testid="cancel">Cancel</button></form>"""


class CheckoutPages:
    """GET shows the payment; POST .../pay and .../cancel act as the user, then redirect to return_url."""

    def __init__(self, fake: FakeYooKassa) -> None:
        self.fake = fake

    def install(self, app: web.Application) -> None:
        app.router.add_get(CHECKOUT_PATH, self._page)
        app.router.add_post(CHECKOUT_PATH + "/pay", self._pay)
        app.router.add_post(CHECKOUT_PATH + "/cancel", self._cancel)

    def _payment(self, request: web.Request) -> dict[str, object]:
        try:
            return self.fake.payment(request.query.get("orderId", ""))
        except KeyError:
            raise web.HTTPNotFound(text="no such payment") from None

    async def _page(self, request: web.Request) -> web.Response:
        payment = self._payment(request)
        amount = payment["amount"]
        assert isinstance(amount, dict)
        pending = payment["status"] == "pending"
        buttons = BUTTONS.format(path=CHECKOUT_PATH, pid=html.escape(str(payment["id"]))) if pending else ""
        body = PAGE.format(
            shop=html.escape(self.fake.shop_id),
            value=html.escape(str(amount["value"])),
            currency=html.escape(str(amount["currency"])),
            description=html.escape(str(payment.get("description") or "")),
            status=html.escape(str(payment["status"])),
            buttons=buttons,
        )
        return web.Response(text=body, content_type="text/html")

    async def _pay(self, request: web.Request) -> web.Response:
        return self._act(request, lambda pid: self.fake.pay(pid))

    async def _cancel(self, request: web.Request) -> web.Response:
        # the real page has no cancel button: a user who leaves lets it expire (expired_on_confirmation)
        return self._act(request, lambda pid: self.fake.cancel(pid, "expired_on_confirmation"))

    def _act(self, request: web.Request, action: Callable[[str], object]) -> web.Response:
        payment = self._payment(request)
        if payment["status"] == "pending":
            action(str(payment["id"]))
        confirmation = payment.get("confirmation") or {}
        assert isinstance(confirmation, dict)
        target = confirmation.get("return_url") or f"{CHECKOUT_PATH}?orderId={payment['id']}"
        raise web.HTTPSeeOther(str(target))
