"""The fake YooKassa driven by the official ``yookassa`` SDK (tests needing the SDK skip until it is installed)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sandbox.yookassa import FakeYooKassa, notification_body

ROOT = Path(__file__).resolve().parents[2]
RETURN_URL = "https://bot.example/paid"


@pytest.fixture
def fake() -> Iterator[FakeYooKassa]:
    with FakeYooKassa(webhook_retry_delays=(0.05, 0.05, 0.05)) as server:
        yield server


@pytest.fixture
def sdk(fake: FakeYooKassa) -> Iterator[Any]:
    """The real SDK configured for the fake (and reset afterwards: its configuration is global)."""
    yookassa = pytest.importorskip("yookassa")
    yookassa.Configuration.configure(**fake.sdk_settings())
    yield yookassa
    yookassa.Configuration.configure(None, None)


class Receiver:
    """A shop's webhook endpoint on loopback: records every POST, answers the scripted statuses (then 200)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], Any]] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.received.append((dict(self.headers), body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/yookassa/webhook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    shop = Receiver()
    yield shop
    shop.close()


def payment_params(value: str = "199.00", **extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "amount": {"value": value, "currency": "RUB"},
        "confirmation": {"type": "redirect", "return_url": RETURN_URL},
        "capture": True,
        "description": "Tokens: 100",
        "metadata": {"user_id": "42", "pack": "p100"},
    }
    params.update(extra)
    return params


def raw(fake: FakeYooKassa, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    """A plain HTTP call (no SDK): (status, JSON)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(fake.base_url + path, data=data, method=method, headers=headers or {})
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def basic(fake: FakeYooKassa, secret: str | None = None) -> dict[str, str]:
    import base64

    token = base64.b64encode(f"{fake.shop_id}:{secret or fake.secret_key}".encode()).decode()
    return {"Authorization": "Basic " + token}


# ---------------------------------------------------------------- payments through the SDK


def test_create_pay_and_read_back(fake: FakeYooKassa, sdk: Any) -> None:
    created = sdk.Payment.create(payment_params(), str(uuid.uuid4()))
    assert re.fullmatch(r"[0-9a-f]{8}-000f-5000-[89ab]000-[0-9a-f]{12}", created.id)
    assert (created.status, created.paid, created.refundable, created.test) == ("pending", False, False, True)
    assert (created.amount.value, created.amount.currency) == (199, "RUB")
    assert created.description == "Tokens: 100"
    assert created.metadata == {"user_id": "42", "pack": "p100", "cms_name": "yookassa_sdk_python"}
    assert created.confirmation.type == "redirect"
    checkout = f"{fake.base_url}/checkout/payments/v2/contract?orderId={created.id}"
    assert created.confirmation.confirmation_url == checkout
    assert created.recipient.account_id == fake.shop_id
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", created.created_at)

    fake.pay(created.id)
    paid = sdk.Payment.find_one(created.id)
    assert (paid.status, paid.paid, paid.refundable) == ("succeeded", True, True)
    assert paid.captured_at and paid.income_amount.value < paid.amount.value
    assert paid.payment_method.type == "bank_card" and paid.payment_method.card.last4 == "4477"
    assert not paid.payment_method.saved
    with pytest.raises(sdk.domain.exceptions.NotFoundError):
        sdk.Payment.find_one("2b000000-000f-5000-8000-000000000000")
    with pytest.raises(ValueError, match="not pending"):
        fake.pay(created.id)


def test_idempotence_key(fake: FakeYooKassa, sdk: Any) -> None:
    key = str(uuid.uuid4())
    first = sdk.Payment.create(payment_params(), key)
    again = sdk.Payment.create(payment_params(), key)
    assert again.id == first.id and len(fake.payments) == 1
    assert [r.replayed for r in fake.requests_for("create_payment")] == [False, True]
    with pytest.raises(sdk.domain.exceptions.BadRequestError) as caught:
        sdk.Payment.create(payment_params(value="200.00"), key)
    assert caught.value.content["code"] == "invalid_request"
    assert caught.value.content["description"] == "Idempotence key duplicated"
    assert caught.value.content["parameter"] == "Idempotence-Key"
    assert len(fake.payments) == 1
    assert sdk.Payment.create(payment_params(), str(uuid.uuid4())).id != first.id

    # without the SDK: no key, a too long key, wrong credentials
    status, body = raw(fake, "POST", "/v3/payments", payment_params(), basic(fake))
    assert (status, body["code"], body["parameter"]) == (400, "invalid_request", "Idempotence-Key")
    long_key = {**basic(fake), "Idempotence-Key": "k" * 65}
    assert raw(fake, "POST", "/v3/payments", payment_params(), long_key)[0] == 400
    wrong = {**basic(fake, "wrong"), "Idempotence-Key": "k1"}
    status, body = raw(fake, "POST", "/v3/payments", payment_params(), wrong)
    assert (status, body["type"], body["code"]) == (401, "error", "invalid_credentials")
    assert len(fake.payments) == 2


def test_two_stage_payment_capture_and_cancel(fake: FakeYooKassa, sdk: Any) -> None:
    held = sdk.Payment.create(payment_params(capture=False), str(uuid.uuid4()))
    with pytest.raises(sdk.domain.exceptions.BadRequestError):
        sdk.Payment.capture(held.id, None, str(uuid.uuid4()))  # still pending
    fake.pay(held.id)
    waiting = sdk.Payment.find_one(held.id)
    assert (waiting.status, waiting.paid) == ("waiting_for_capture", True) and waiting.expires_at
    captured = sdk.Payment.capture(held.id, {"amount": {"value": "150.00", "currency": "RUB"}}, str(uuid.uuid4()))
    assert (captured.status, captured.amount.value) == ("succeeded", 150)

    other = sdk.Payment.create(payment_params(capture=False), str(uuid.uuid4()))
    with pytest.raises(sdk.domain.exceptions.BadRequestError):
        sdk.Payment.cancel(other.id, str(uuid.uuid4()))  # a pending payment is not the merchant's to cancel
    fake.pay(other.id)
    canceled = sdk.Payment.cancel(other.id, str(uuid.uuid4()))
    assert (canceled.status, canceled.paid) == ("canceled", False)
    assert (canceled.cancellation_details.party, canceled.cancellation_details.reason) == (
        "merchant",
        "canceled_by_merchant",
    )

    expired = sdk.Payment.create(payment_params(), str(uuid.uuid4()))
    fake.cancel(expired.id)
    view = sdk.Payment.find_one(expired.id)
    assert view.status == "canceled" and view.cancellation_details.reason == "expired_on_confirmation"
    assert view.cancellation_details.party == "yoo_money"
    fake.cancel(sdk.Payment.create(payment_params(), str(uuid.uuid4())).id, "insufficient_funds")
    assert sdk.Payment.list({"status": "canceled"}).items[0].cancellation_details.party == "payment_network"


def test_refunds(fake: FakeYooKassa, sdk: Any) -> None:
    payment = sdk.Payment.create(payment_params(value="100.00"), str(uuid.uuid4()))
    with pytest.raises(sdk.domain.exceptions.BadRequestError):  # not paid yet
        sdk.Refund.create({"payment_id": payment.id, "amount": {"value": "1.00", "currency": "RUB"}})
    fake.pay(payment.id)
    first = sdk.Refund.create({"payment_id": payment.id, "amount": {"value": "30.00", "currency": "RUB"}})
    assert (first.status, first.payment_id, first.amount.value) == ("succeeded", payment.id, 30)
    assert re.fullmatch(r"[0-9a-f]{8}-0015-5000-[89ab]000-[0-9a-f]{12}", first.id)
    with pytest.raises(sdk.domain.exceptions.BadRequestError):
        sdk.Refund.create({"payment_id": payment.id, "amount": {"value": "70.01", "currency": "RUB"}})
    second = sdk.Refund.create({"payment_id": payment.id, "amount": {"value": "70.00", "currency": "RUB"}})
    after = sdk.Payment.find_one(payment.id)
    assert after.refunded_amount.value == 100 and not after.refundable
    assert sdk.Refund.find_one(second.id).amount.value == 70
    assert {r.id for r in sdk.Refund.list({"payment_id": payment.id}).items} == {first.id, second.id}


def test_listing_pages_newest_first(fake: FakeYooKassa, sdk: Any) -> None:
    ids = [sdk.Payment.create(payment_params(), str(uuid.uuid4())).id for _ in range(13)]
    first = sdk.Payment.list({"limit": 10})
    assert [p.id for p in first.items] == ids[::-1][:10] and first.next_cursor
    rest = sdk.Payment.list({"limit": 10, "cursor": first.next_cursor})
    assert [p.id for p in rest.items] == ids[::-1][10:] and not getattr(rest, "next_cursor", None)


def test_receipt_and_saved_method_autopayment(fake: FakeYooKassa, sdk: Any) -> None:
    item = {"description": "100 tokens", "quantity": "1.00", "amount": {"value": "199.00", "currency": "RUB"}}
    receipt = {"customer": {"email": "ann@example.com"}, "items": [{**item, "vat_code": 1}]}
    with pytest.raises(sdk.domain.exceptions.BadRequestError):
        bad = {**receipt, "items": [{**item, "vat_code": 1, "amount": {"value": "99.00", "currency": "RUB"}}]}
        sdk.Payment.create(payment_params(receipt=bad), str(uuid.uuid4()))
    first = sdk.Payment.create(payment_params(receipt=receipt, save_payment_method=True), str(uuid.uuid4()))
    assert first.receipt_registration == "pending"
    fake.pay(first.id)
    paid = sdk.Payment.find_one(first.id)
    assert paid.receipt_registration == "succeeded" and paid.payment_method.saved

    saved = {"amount": {"value": "199.00", "currency": "RUB"}, "payment_method_id": paid.payment_method.id}
    renewal = sdk.Payment.create({**saved, "capture": True}, str(uuid.uuid4()))
    assert renewal.status == "succeeded" and renewal.paid and not getattr(renewal, "confirmation", None)
    with pytest.raises(sdk.domain.exceptions.BadRequestError):
        sdk.Payment.create(
            {"amount": {"value": "1.00", "currency": "RUB"}, "payment_method_id": "no-such-method"},
            str(uuid.uuid4()),
        )


# ---------------------------------------------------------------- faults


def test_faults_and_retries_with_the_same_key(fake: FakeYooKassa, sdk: Any) -> None:
    errors = sdk.domain.exceptions
    key = str(uuid.uuid4())
    fake.fail_next("create_payment", 500)
    with pytest.raises(errors.InternalServerError):
        sdk.Payment.create(payment_params(), key)
    assert fake.payments == {}
    created = sdk.Payment.create(payment_params(), key)  # the 500 stored nothing: the retry runs

    fake.fail_next("create_payment", 500, applied=True)  # happened, but the answer says 500
    key = str(uuid.uuid4())
    with pytest.raises(errors.InternalServerError):
        sdk.Payment.create(payment_params(), key)
    assert len(fake.payments) == 2
    assert sdk.Payment.create(payment_params(), key).id in fake.payments and len(fake.payments) == 2

    fake.lose_answer_next("create_payment")  # the connection drops after the payment was made
    key = str(uuid.uuid4())
    with pytest.raises(AttributeError):  # how the SDK reports a dropped connection
        sdk.Payment.create(payment_params(), key)
    assert len(fake.payments) == 3
    sdk.Payment.create(payment_params(), key)
    assert len(fake.payments) == 3

    fake.fail_next("get_payment", 429)
    with pytest.raises(errors.TooManyRequestsError):
        sdk.Payment.find_one(created.id)
    fake.delay_next("get_payment", 0.4)
    start = time.monotonic()
    assert sdk.Payment.find_one(created.id).id == created.id
    assert time.monotonic() - start >= 0.4
    fake.lose_answer_next("capture_payment", mode="hang", seconds=0.3)
    held = sdk.Payment.create(payment_params(capture=False), str(uuid.uuid4()))
    fake.pay(held.id)
    start = time.monotonic()
    assert sdk.Payment.capture(held.id, None, str(uuid.uuid4())).status == "succeeded"
    assert time.monotonic() - start >= 0.3
    with pytest.raises(ValueError, match="unknown operation"):
        fake.fail_next("create_paymnet")


# ---------------------------------------------------------------- webhooks


def test_notifications_follow_status_changes(fake: FakeYooKassa, sdk: Any, receiver: Receiver) -> None:
    from yookassa.domain.common import SecurityHelper
    from yookassa.domain.notification import WebhookNotificationFactory

    fake.set_webhook(receiver.url)
    payment = sdk.Payment.create(payment_params(), str(uuid.uuid4()))
    receiver.statuses = [500, 502]  # the shop fails twice: YooKassa retries
    fake.pay(payment.id)
    assert fake.wait_notifications(1)[0].delivered
    assert [a.status for a in fake.notifications[0].attempts] == [500, 502, 200]
    headers, body = receiver.received[-1]
    assert body == notification_body("payment.succeeded", fake.payment(payment.id))
    assert headers["X-Forwarded-For"] == "185.71.76.1"
    assert SecurityHelper().is_ip_trusted(headers["X-Forwarded-For"])
    parsed = WebhookNotificationFactory().create(body)
    assert (parsed.event, parsed.object.id, parsed.object.status) == ("payment.succeeded", payment.id, "succeeded")

    refund = sdk.Refund.create({"payment_id": payment.id, "amount": {"value": "9.00", "currency": "RUB"}})
    duplicate = fake.notify(payment.id)  # YooKassa may deliver the same event again
    assert duplicate.wait()
    events = [n.event for n in fake.wait_notifications(3)]
    assert sorted(events) == ["payment.succeeded", "payment.succeeded", "refund.succeeded"]
    refund_body = next(b for _, b in receiver.received if b["event"] == "refund.succeeded")
    assert refund_body["object"]["id"] == refund.id
    assert WebhookNotificationFactory().create(refund_body).object.payment_id == payment.id

    fake.set_webhook(receiver.url, events=("payment.canceled",))
    held = sdk.Payment.create(payment_params(capture=False), str(uuid.uuid4()))
    fake.pay(held.id)  # waiting_for_capture is not subscribed
    fake.cancel(sdk.Payment.create(payment_params(), str(uuid.uuid4())).id)
    assert [n.event for n in fake.wait_notifications(4)][-1] == "payment.canceled"
    assert len(fake.notifications) == 4

    fake.set_webhook("http://127.0.0.1:9/unreachable")
    lost = fake.notify(payment.id)
    assert not lost.wait() and len(lost.attempts) == 4 and all(a.status is None for a in lost.attempts)


# ---------------------------------------------------------------- without the SDK


async def test_checkout_page_pays_and_returns(fake: FakeYooKassa) -> None:
    import aiohttp

    headers = {**basic(fake), "Idempotence-Key": "checkout-1"}
    status, created = raw(fake, "POST", "/v3/payments", payment_params(), headers)
    assert status == 200
    async with aiohttp.ClientSession() as http:
        async with http.get(created["confirmation"]["confirmation_url"]) as page:
            text = await page.text()
        assert "199.00 RUB" in text and "Tokens: 100" in text and 'data-testid="pay"' in text
        pay_url = f"{fake.base_url}/checkout/payments/v2/contract/pay?orderId={created['id']}"
        async with http.post(pay_url, allow_redirects=False) as answer:
            assert (answer.status, answer.headers["Location"]) == (303, RETURN_URL)
    assert fake.payment(created["id"])["status"] == "succeeded"


def test_standalone_cli_starts() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.yookassa", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        with urllib.request.urlopen(f"http://127.0.0.1:{match.group(1)}/health", timeout=5) as response:
            assert json.load(response) == {"ok": True}
    finally:
        process.terminate()
        process.wait(10)


def test_the_fake_imports_neither_django_nor_the_sdk() -> None:
    import ast

    for path in sorted((ROOT / "sandbox" / "yookassa").glob("*.py")):
        source = path.read_text(encoding="utf-8")
        assert len(source.splitlines()) <= 600, path
        for node in ast.walk(ast.parse(source)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            assert not any(n.split(".")[0] in ("django", "yookassa", "botapp") for n in names), (path, names)
