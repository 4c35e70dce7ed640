"""Card payments through YooKassa (botapp/services/card.py, botapp/webhooks_yookassa.py), against the
sandbox's fake YooKassa driven by the real `yookassa` SDK: creating (the quote in roubles, the
promocode's reservation, the idempotence key, a lost answer, YooKassa down), the webhook (who may call,
what it accepts, re-reading the API, crediting once, cancelling), the expiry of abandoned payments, and
20 concurrent deliveries on PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal as D
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from botapp import tasks
from botapp.models import Payment, PromocodeActivation, TopUpPackage, Transaction, UserBalance
from botapp.services import card, yookassa_api
from botapp.services.card import CardPriceMissing, CardService, CardUnavailable
from botapp.services.exceptions import InvoiceReplaced
from botapp.services.payments import PaymentService
from botapp.services.promo import PromoService
from sandbox.yookassa import FakeYooKassa, notification_body

WEBHOOK = "/yookassa/webhook/"
YOOKASSA_IP = "185.71.76.1"


@pytest.fixture
def fake(settings, monkeypatch) -> Iterator[FakeYooKassa]:
    """The fake YooKassa, and the settings that point our client at it."""
    with FakeYooKassa(webhook_retry_delays=(0.05,)) as server:
        settings.YOOKASSA_SHOP_ID = server.shop_id
        settings.YOOKASSA_SECRET_KEY = server.secret_key
        settings.YOOKASSA_API_URL = server.api_url
        settings.YOOKASSA_TIMEOUT_SECONDS = 2.0
        settings.YOOKASSA_RETURN_URL = ""
        settings.YOOKASSA_RECEIPTS = False
        settings.YOOKASSA_TRUST_FORWARDED_FOR = 0
        settings.BOT_USERNAME = "genstudio_test_bot"
        monkeypatch.setattr(card, "RETRY_PAUSE", 0.0)
        yield server


@pytest.fixture
def notices(monkeypatch) -> list[int]:
    """notify_card_payment tasks queued (payment ids), instead of a broker."""
    sent: list[int] = []
    monkeypatch.setattr(tasks.notify_card_payment, "apply_async", lambda args, **options: sent.append(args[0]))
    return sent


def package(name: str = "Pro") -> TopUpPackage:
    return TopUpPackage.objects.get(name=name)  # Pro: 100 tokens, 400 stars, 799 roubles


def start(user, name: str = "Pro", lang: str = "ru") -> card.CardCheckout:
    return CardService.start(user_id=user.pk, package_id=package(name).pk, lang=lang)


def deliver(event: str, obj: dict[str, Any], *, address: str = YOOKASSA_IP, **headers: str) -> Any:
    """One webhook POST through Django's test client, from `address`."""
    body = json.dumps(notification_body(event, obj))
    return Client().post(WEBHOOK, data=body, content_type="application/json", REMOTE_ADDR=address, **headers)


def post_raw(body: bytes | str, *, address: str = YOOKASSA_IP) -> Any:
    return Client().post(WEBHOOK, data=body, content_type="application/json", REMOTE_ADDR=address)


def balance(user) -> tuple[D, D]:
    row = UserBalance.objects.get(user=user)
    return row.balance, row.bonus_balance


# --- creating ------------------------------------------------------------------------------------------
def test_start_makes_a_pending_payment_and_its_yookassa_payment(make_user, fake):
    user = make_user()
    checkout = start(user)
    payment = Payment.objects.get()
    assert (payment.provider, payment.status, payment.currency, payment.amount) == (
        "yookassa",
        "pending",
        "RUB",
        D("799"),
    )
    assert (payment.tokens, payment.provider_charge_id) == (D("100"), checkout.yookassa_id)
    assert payment.raw["yookassa"]["confirmation_url"] == checkout.confirmation_url
    assert checkout.confirmation_url.startswith(fake.base_url + "/checkout/")
    remote = fake.payment(checkout.yookassa_id)
    assert remote["amount"] == {"value": "799.00", "currency": "RUB"} and remote["status"] == "pending"
    assert remote["metadata"] == {
        "payment_id": str(payment.pk),
        "user_id": str(user.pk),
        "cms_name": "yookassa_sdk_python",
    }
    assert remote["confirmation"]["return_url"] == "https://t.me/genstudio_test_bot"
    assert "100" in remote["description"] and fake.payments[checkout.yookassa_id].capture is True
    (request,) = fake.requests_for("create_payment")
    assert request.idempotence_key == payment.invoice_payload
    import yookassa

    assert yookassa.Configuration.account_id is None, "the SDK's global configuration is never written"


def test_the_discount_applies_to_the_rouble_price_and_the_code_is_reserved(make_user, fake):
    user = make_user()
    PromoService.redeem(user_id=user.pk, code="FIRST50")
    checkout = start(user, "Start")  # 99 roubles, -50%
    payment = Payment.objects.get()
    assert checkout.amount == payment.amount == D("49.50") and payment.promocode.code == "FIRST50"
    assert fake.payment(checkout.yookassa_id)["amount"]["value"] == "49.50"
    assert PromocodeActivation.objects.get(user=user).reserved_by == payment


def test_a_package_without_a_rouble_price_and_an_unconfigured_shop_are_refused(make_user, fake, settings):
    user = make_user()
    TopUpPackage.objects.filter(name="Pro").update(price_rub=None)
    with pytest.raises(CardPriceMissing):
        start(user)
    settings.YOOKASSA_SECRET_KEY = ""
    with pytest.raises(CardUnavailable):
        start(user, "Start")
    assert not Payment.objects.exists() and fake.requests == []


def test_a_lost_answer_is_asked_again_with_the_same_key_and_gets_the_same_payment(make_user, fake):
    user = make_user()
    fake.lose_answer_next("create_payment")  # made at YooKassa, the connection dropped before the answer
    checkout = start(user)
    assert len(fake.payments) == 1 and checkout.yookassa_id in fake.payments
    first, again = fake.requests_for("create_payment")
    assert first.idempotence_key == again.idempotence_key == Payment.objects.get().invoice_payload
    assert again.replayed
    assert Payment.objects.get().status == "pending"


def test_a_hanging_answer_times_out_and_is_asked_again(make_user, fake, settings):
    settings.YOOKASSA_TIMEOUT_SECONDS = 0.5
    user = make_user()
    fake.lose_answer_next("create_payment", mode="hang", seconds=5)
    began = time.monotonic()
    checkout = start(user)
    assert time.monotonic() - began < 4, "our timeout fired, not the fake's 5 s"
    assert list(fake.payments) == [checkout.yookassa_id]


@pytest.mark.parametrize(("status", "requests"), [(500, 2), (429, 2), (400, 1), (401, 1)])
def test_yookassa_refusing_fails_the_payment_and_frees_the_promocode(make_user, fake, status, requests):
    user = make_user()
    PromoService.redeem(user_id=user.pk, code="FIRST50")
    fake.fail_next("create_payment", status, times=2)
    with pytest.raises(CardUnavailable):
        start(user)
    assert len(fake.requests_for("create_payment")) == requests, "only an unknown or temporary outcome is retried"
    payment = Payment.objects.get()
    assert payment.status == "failed" and payment.provider_charge_id is None and "create_error" in payment.raw
    assert PromocodeActivation.objects.get(user=user).reserved_by is None
    assert PromoService.pending_topup_activation(user_id=user.pk).promocode.code == "FIRST50"


def test_yookassa_unreachable_fails_the_payment(make_user, fake, settings):
    settings.YOOKASSA_API_URL = "http://127.0.0.1:9/v3"
    with pytest.raises(CardUnavailable):
        start(make_user())
    assert Payment.objects.get().status == "failed"


def test_receipts_go_to_the_configured_email(make_user, fake, settings):
    settings.YOOKASSA_RECEIPTS = True
    settings.YOOKASSA_RECEIPT_EMAIL = ""
    user = make_user()
    with pytest.raises(CardUnavailable):
        start(user)
    assert not Payment.objects.exists()
    settings.YOOKASSA_RECEIPT_EMAIL = "receipts@shop.example"
    settings.YOOKASSA_VAT_CODE = 6
    start(user)
    (request,) = fake.requests_for("create_payment")
    receipt = request.json["receipt"]
    assert receipt["customer"] == {"email": "receipts@shop.example"}
    (item,) = receipt["items"]
    assert (item["vat_code"], item["amount"], D(str(item["quantity"]))) == (
        6,
        {"value": "799.00", "currency": "RUB"},
        1,
    )
    assert fake.payment(Payment.objects.get().provider_charge_id)["receipt_registration"] == "pending"


# --- the webhook ---------------------------------------------------------------------------------------
def test_paid_is_credited_once_however_often_the_webhook_comes(
    make_user, fake, notices, django_capture_on_commit_callbacks
):
    referrer = make_user()
    user = make_user(referred_by=referrer)
    checkout = start(user, "Studio")  # 300 tokens + 5% package bonus
    paid = fake.pay(checkout.yookassa_id)
    answers = []
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            answers.append(deliver("payment.succeeded", paid))
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json()["outcome"] for a in answers] == ["credited", "already_credited", "already_credited"]
    payment = Payment.objects.get()
    assert (payment.status, payment.provider_charge_id) == ("succeeded", checkout.yookassa_id) and payment.paid_at
    assert balance(user) == (D("300.00"), D("15.00"))
    assert Transaction.objects.filter(payment=payment, kind="deposit").count() == 2  # main + bonus bucket
    assert Transaction.objects.filter(user=referrer, kind="referral").count() == 1
    assert notices == [payment.pk], "the user is told once, after commit"
    call_command("check_ledger")


def test_the_notice_tells_what_was_credited(make_user, fake):
    user = make_user(language_code="en")
    checkout = start(user, "Studio", lang="en")
    CardService.apply(
        payment_id=checkout.payment_id, remote=yookassa_api.get_payment(fake.pay(checkout.yookassa_id)["id"])
    )
    text = card.paid_notice_text(payment=Payment.objects.get(), lang="en")
    assert "300 tok. credited" in text and "Balance: <b>315</b>" in text and "+15 tok." in text


def test_the_notice_is_sent_once_with_the_keyboard_and_waits_on_flood_control(make_user, fake, monkeypatch):
    from botapp.services import notify
    from botapp.telegram.sender import RetryLater

    sent: list[tuple[int, str, object]] = []
    answers: list[Exception] = [RetryLater("flood", retry_in=4.0)]

    class Stub:
        def send_message(self, chat_id: int, text: str, **kwargs):
            if answers:
                raise answers.pop(0)
            sent.append((chat_id, text, kwargs.get("reply_markup")))

    monkeypatch.setattr(notify, "get_sender", lambda: Stub())
    user = make_user(language_code="en")
    checkout = start(user, "Studio", lang="en")
    assert CardService.send_paid_notice(payment_id=checkout.payment_id) is None and sent == []  # not paid yet
    CardService.apply(
        payment_id=checkout.payment_id, remote=yookassa_api.get_payment(fake.pay(checkout.yookassa_id)["id"])
    )
    assert CardService.send_paid_notice(payment_id=checkout.payment_id) == 4.0 and sent == []
    assert CardService.send_paid_notice(payment_id=checkout.payment_id) is None
    assert CardService.send_paid_notice(payment_id=checkout.payment_id) is None  # a redelivered task
    ((chat_id, text, markup),) = sent
    assert chat_id == user.telegram_id and "300 tok. credited" in text
    assert markup is not None and markup.inline_keyboard, "the paid keyboard goes with it"


def test_an_untrusted_address_is_refused(make_user, fake, settings):
    checkout = start(make_user())
    paid = fake.pay(checkout.yookassa_id)
    assert deliver("payment.succeeded", paid, address="10.1.2.3").status_code == 403
    # Without proxies configured, X-Forwarded-For is the caller's own claim: ignored.
    spoofed = deliver("payment.succeeded", paid, address="127.0.0.1", HTTP_X_FORWARDED_FOR=YOOKASSA_IP)
    assert spoofed.status_code == 403
    assert Payment.objects.get().status == "pending" and fake.requests_for("get_payment") == []
    # Behind one proxy the caller is the last address it appended (what a client sends before it is not).
    settings.YOOKASSA_TRUST_FORWARDED_FOR = 1
    forged = deliver("payment.succeeded", paid, address="127.0.0.1", HTTP_X_FORWARDED_FOR=f"{YOOKASSA_IP}, 10.9.9.9")
    assert forged.status_code == 403
    proxied = deliver("payment.succeeded", paid, address="127.0.0.1", HTTP_X_FORWARDED_FOR=f"10.9.9.9, {YOOKASSA_IP}")
    assert proxied.status_code == 200 and Payment.objects.get().status == "succeeded"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'{"type": "notification"}',
        b'{"type": "notification", "event": "payment.succeeded", "object": {}}',
        b'{"type": "notification", "event": "payment.succeeded", "object": "x"}',
        b'{"type": "other", "event": "payment.succeeded", "object": {"id": "1"}}',
        b"[" * 50_000,
    ],
)
def test_a_body_that_is_not_a_notification_is_400(fake, body):
    assert post_raw(body).status_code == 400


def test_only_post(fake):
    assert Client().get(WEBHOOK, REMOTE_ADDR=YOOKASSA_IP).status_code == 405


def test_an_unknown_payment_is_200_and_logged(make_user, fake, caplog):
    other = yookassa_api.create_payment(
        {
            "amount": {"value": "10.00", "currency": "RUB"},
            "confirmation": {"type": "redirect", "return_url": "https://example.com"},
            "capture": True,
        },
        idempotence_key="someone-else",
    )
    answer = deliver("payment.succeeded", fake.pay(other.id))
    assert (answer.status_code, answer.json()["outcome"]) == (200, "unknown")
    assert "unknown payment" in caplog.text
    assert fake.requests_for("get_payment") == [], "not ours: the API is not even asked"
    refund = deliver("refund.succeeded", {"id": "r-1", "payment_id": other.id, "status": "succeeded"})
    # refunds are re-read from the API (botapp/services/card_refunds.py): this one it does not know
    assert (refund.status_code, refund.json()["outcome"]) == (200, "unknown")


def test_the_api_is_trusted_over_the_body(make_user, fake, caplog):
    user = make_user()
    checkout = start(user)
    forged = {**fake.payment(checkout.yookassa_id), "status": "succeeded", "paid": True}
    answer = deliver("payment.succeeded", forged)  # the body says paid; the API says pending
    assert (answer.status_code, answer.json()["outcome"]) == (200, "pending")
    assert Payment.objects.get().status == "pending" and not Transaction.objects.filter(kind="deposit").exists()
    assert "acting on the API" in caplog.text

    fake.cancel(checkout.yookassa_id)  # and when the API says canceled, it is cancelled
    answer = deliver("payment.succeeded", forged)
    assert answer.json()["outcome"] == "cancelled" and Payment.objects.get().status == "cancelled"
    assert balance(user) == (D("0"), D("0"))


def test_the_api_unavailable_answers_503_so_yookassa_retries(make_user, fake):
    checkout = start(make_user())
    paid = fake.pay(checkout.yookassa_id)
    fake.fail_next("get_payment", 500)
    assert deliver("payment.succeeded", paid).status_code == 503
    assert Payment.objects.get().status == "pending"
    assert deliver("payment.succeeded", paid).json()["outcome"] == "credited"


def test_canceled_cancels_and_frees_the_promocode(make_user, fake):
    user = make_user()
    PromoService.redeem(user_id=user.pk, code="FIRST50")
    checkout = start(user, "Start")
    assert PromocodeActivation.objects.get(user=user).reserved_by_id == checkout.payment_id
    canceled = fake.cancel(checkout.yookassa_id, "insufficient_funds")
    for _ in range(2):  # a replay changes nothing
        assert deliver("payment.canceled", canceled).json()["outcome"] == "cancelled"
    payment = Payment.objects.get()
    assert payment.status == "cancelled" and payment.raw["yookassa"]["cancellation"]["reason"] == "insufficient_funds"
    activation = PromocodeActivation.objects.get(user=user)
    assert activation.reserved_by is None and activation.consumed_at is None
    # The code is free for the next invoice (Stars here) and is consumed by it.
    stars = PaymentService.create_invoice(user_id=user.pk, package_id=package("Start").pk)
    assert stars.promocode.code == "FIRST50" and stars.amount == 25


def test_a_card_payment_voided_by_a_newer_invoice_is_still_credited_when_paid(make_user, fake):
    """No pre-checkout for cards: YooKassa takes the money without asking, so a paid card payment is credited
    even after a newer invoice took its promocode (here the code was not used yet: the card payment gets it)."""
    user = make_user()
    PromoService.redeem(user_id=user.pk, code="FIRST50")
    checkout = start(user, "Start")
    stars = PaymentService.create_invoice(user_id=user.pk, package_id=package("Start").pk)
    assert Payment.objects.get(pk=checkout.payment_id).status == "cancelled"  # voided by the newer invoice
    answer = deliver("payment.succeeded", fake.pay(checkout.yookassa_id))
    assert answer.json()["outcome"] == "credited"
    payment = Payment.objects.get(pk=checkout.payment_id)
    assert payment.status == "succeeded" and payment.promocode.code == "FIRST50" and payment.amount == D("49.50")
    assert PromocodeActivation.objects.get(user=user).consumed_by == payment
    assert balance(user)[0] == D("10.00")
    with pytest.raises(InvoiceReplaced):  # the Stars invoice lost the code: its pre-checkout is refused
        PaymentService.validate_precheckout(
            invoice_payload=stars.invoice_payload, telegram_id=user.telegram_id, total_amount=25, currency="XTR"
        )


def test_a_paid_amount_that_does_not_match_is_not_credited_and_alerts(make_user, fake, monkeypatch):
    alerts: list[dict] = []
    from botapp.services import alerts as alerts_module

    monkeypatch.setattr(alerts_module, "alert_operators", lambda **kw: alerts.append(kw) or True)
    checkout = start(make_user())
    fake.pay(checkout.yookassa_id)
    fake.payments[checkout.yookassa_id].data["amount"]["value"] = "1.00"
    answer = deliver("payment.succeeded", fake.payment(checkout.yookassa_id))
    assert (answer.status_code, answer.json()["outcome"]) == (200, "not_credited")
    assert Payment.objects.get().status == "pending"
    assert alerts[0]["key"] == "payment_not_credited" and alerts[0]["charge_id"] == checkout.yookassa_id


# --- abandoned payments --------------------------------------------------------------------------------
def test_the_sweep_settles_what_the_webhooks_missed(make_user, fake, notices, django_capture_on_commit_callbacks):
    user = make_user()
    PromoService.redeem(user_id=user.pk, code="FIRST50")
    expired = start(user, "Start")  # holds the code
    paid = start(make_user(), "Pro")
    still = start(make_user(), "Basic")
    stale = start(make_user(), "Basic")
    fresh = start(make_user(), "Pro")
    never = PaymentService.create_invoice(user_id=make_user().pk, package_id=package().pk, provider="yookassa")
    now = timezone.now()
    old = now - timedelta(minutes=70)
    for pk in (expired.payment_id, paid.payment_id, still.payment_id, never.pk):
        Payment.objects.filter(pk=pk).update(created_at=old)
    Payment.objects.filter(pk=stale.payment_id).update(created_at=now - timedelta(days=8))
    fake.cancel(expired.yookassa_id)  # YooKassa expired it: no webhook reached us
    fake.pay(paid.yookassa_id)

    with django_capture_on_commit_callbacks(execute=True):
        counts = CardService.expire_abandoned(now=now)
    assert counts == {"never_created": 1, "cancelled": 1, "credited": 1, "pending": 1, "failed": 1}
    status = dict(Payment.objects.values_list("pk", "status"))
    assert status[expired.payment_id] == "cancelled" and status[paid.payment_id] == "succeeded"
    assert (status[still.payment_id], status[stale.payment_id]) == ("pending", "failed")
    assert (status[fresh.payment_id], status[never.pk]) == ("pending", "failed")
    assert PromocodeActivation.objects.get(user=user).reserved_by is None
    assert notices == [paid.payment_id]
    asked = {r.path.rsplit("/", 1)[-1] for r in fake.requests_for("get_payment")}
    assert asked == {expired.yookassa_id, paid.yookassa_id, still.yookassa_id, stale.yookassa_id}

    with django_capture_on_commit_callbacks(execute=True):
        again = CardService.expire_abandoned(now=now)
    assert again == {"pending": 1}, "settled payments are not asked about again"
    assert notices == [paid.payment_id]
    call_command("check_ledger")


def test_the_sweep_survives_yookassa_down(make_user, fake):
    checkout = start(make_user())
    Payment.objects.filter(pk=checkout.payment_id).update(created_at=timezone.now() - timedelta(hours=2))
    fake.fail_next("get_payment", 500)
    assert CardService.expire_abandoned() == {"errors": 1}
    assert Payment.objects.get().status == "pending"
    assert tasks.expire_card_payments.apply().get() == {"pending": 1}


# --- helpers ----------------------------------------------------------------------------------------------
def test_the_default_trusted_networks_are_the_sdks(settings):
    from yookassa.domain.common import SecurityHelper

    assert settings.YOOKASSA_TRUSTED_IPS == SecurityHelper.YOOKASSA_NETWORKS
    assert yookassa_api.is_trusted("185.71.76.1") and yookassa_api.is_trusted("2a02:5180:0:1509::1")
    assert yookassa_api.is_trusted("::ffff:77.75.156.11")
    assert not yookassa_api.is_trusted("185.71.76.32") and not yookassa_api.is_trusted("not an ip")
    assert not yookassa_api.is_trusted("")
    assert yookassa_api.is_trusted("10.0.0.7", ["10.0.0.0/8", "nonsense"])


def test_the_secret_key_is_redacted(fake, settings):
    from botapp.redaction import redact

    assert settings.YOOKASSA_SECRET_KEY not in redact(f"auth failed for {settings.YOOKASSA_SECRET_KEY}")


def test_the_client_address():
    assert yookassa_api.client_address("1.2.3.4", "5.6.7.8", hops=0) == "1.2.3.4"
    assert yookassa_api.client_address("10.0.0.1", "9.9.9.9, 5.6.7.8", hops=1) == "5.6.7.8"
    assert yookassa_api.client_address("10.0.0.1", "9.9.9.9, 5.6.7.8, 10.0.0.2", hops=2) == "5.6.7.8"
    assert yookassa_api.client_address("10.0.0.1", "", hops=1) == ""


def test_every_call_has_a_timeout(fake, settings):
    settings.YOOKASSA_TIMEOUT_SECONDS = 0.3
    created = yookassa_api.create_payment(
        {
            "amount": {"value": "5.00", "currency": "RUB"},
            "confirmation": {"type": "redirect", "return_url": "https://e.x"},
        },
        idempotence_key="timeout-probe",
    )
    fake.delay_next("get_payment", 3.0)
    began = time.monotonic()
    with pytest.raises(yookassa_api.GatewayError) as caught:
        yookassa_api.get_payment(created.id)
    assert caught.value.retryable and time.monotonic() - began < 2.0
    fake.lose_answer_next("get_payment")  # a dropped connection: the SDK's AttributeError becomes ours
    with pytest.raises(yookassa_api.GatewayError) as caught:
        yookassa_api.get_payment(created.id)
    assert caught.value.retryable
    with pytest.raises(yookassa_api.GatewayError) as caught:
        yookassa_api.get_payment("2b000000-000f-5000-8000-000000000000")
    assert caught.value.not_found and not caught.value.retryable


# --- 20 concurrent deliveries on PostgreSQL ------------------------------------------------------------
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_20_concurrent_deliveries_credit_once(make_user, fake, notices):
    user = make_user()
    PromoService.redeem(user_id=user.pk, code="FIRST50")
    checkout = start(user, "Start")
    body = json.dumps(notification_body("payment.succeeded", fake.pay(checkout.yookassa_id)))
    barrier = threading.Barrier(20)
    outcomes: list[Any] = []
    lock = threading.Lock()

    def deliver_once() -> None:
        try:
            barrier.wait()
            response = Client().post(WEBHOOK, data=body, content_type="application/json", REMOTE_ADDR=YOOKASSA_IP)
            result: Any = (response.status_code, response.json()["outcome"])
        except Exception as exc:  # asserted below
            result = exc
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=deliver_once) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == [(200, "already_credited")] * 19 + [(200, "credited")], outcomes
    payment = Payment.objects.get()
    assert payment.status == "succeeded" and payment.promocode.code == "FIRST50"
    assert Transaction.objects.filter(payment=payment, kind="deposit").count() == 1
    assert balance(user) == (D("10.00"), D("0.00"))
    assert PromocodeActivation.objects.get(user=user).consumed_by == payment
    assert notices == [payment.pk]
    call_command("check_ledger")
