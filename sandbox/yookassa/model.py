"""YooKassa's objects (payments, refunds, errors) and their rules, without HTTP (Django-free, SDK-free).

Shapes follow the YooKassa API v3 reference: amounts are ``{"value": "100.00", "currency": "RUB"}`` with the
value a decimal *string*; times are ISO 8601 UTC with milliseconds (``2024-05-01T10:00:00.123Z``); ids look
like YooKassa's (``2b6c...-000f-5000-8000-...`` for payments). Errors are
``{"type": "error", "id", "code", "description", "parameter"}``. Descriptions marked "approximate" in the
code are worded like YooKassa's but were not checked against the live API; codes and HTTP statuses are
YooKassa's documented ones.
"""

from __future__ import annotations

import copy
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

JSON = dict[str, Any]

CURRENCIES = frozenset({"RUB", "USD", "EUR", "BYN", "CNY", "KZT", "UAH", "UZS", "TRY", "INR", "MDL", "AZN", "AMD"})
CONFIRMATION_TYPES = frozenset({"redirect", "embedded", "external", "qr", "mobile_application"})
#: cancellation_details.party for each reason (YooKassa's table, the common ones).
CANCEL_PARTY = {
    "expired_on_confirmation": "yoo_money",
    "expired_on_capture": "yoo_kassa",
    "canceled_by_merchant": "merchant",
    "insufficient_funds": "payment_network",
    "card_expired": "payment_network",
    "3d_secure_failed": "payment_network",
    "call_issuer": "payment_network",
    "general_decline": "payment_network",
    "fraud_suspected": "yoo_money",
    "payment_method_limit_exceeded": "payment_network",
    "payment_method_restricted": "payment_network",
    "permission_revoked": "yoo_kassa",
    "internal_timeout": "yoo_money",
}
ERROR_CODES = {
    400: "invalid_request",
    401: "invalid_credentials",
    403: "forbidden",
    404: "not_found",
    429: "too_many_requests",
    500: "internal_server_error",
}
CAPTURE_WINDOW = timedelta(days=7)  # bank cards: a waiting_for_capture payment expires after 7 days


class ApiFailure(Exception):
    """An error YooKassa answers with (HTTP status + error body)."""

    def __init__(self, status: int, description: str, parameter: str | None = None, code: str | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameter = parameter
        self.code = code or ERROR_CODES.get(status, "internal_server_error")

    def body(self) -> JSON:
        """The error object."""
        out: JSON = {"type": "error", "id": str(uuid.uuid4()), "code": self.code, "description": self.description}
        if self.parameter:
            out["parameter"] = self.parameter
        return out


def invalid(description: str, parameter: str | None = None) -> ApiFailure:
    """400 invalid_request."""
    return ApiFailure(400, description, parameter)


def timestamp(moment: datetime | None = None) -> str:
    """``2024-05-01T10:00:00.123Z``."""
    moment = moment or datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def object_id(kind: str = "000f") -> str:
    """An id shaped like YooKassa's: payments ``...-000f-5000-8000-...``, refunds ``...-0015-5000-...``."""
    return f"{secrets.token_hex(4)}-{kind}-5000-{secrets.choice('89ab')}000-{secrets.token_hex(6)}"


def money(raw: Any, parameter: str) -> tuple[Decimal, str]:
    """Validate an Amount object; returns (value, currency)."""
    if not isinstance(raw, dict):
        raise invalid(f"Parameter {parameter} is missing or has an invalid format", parameter)  # approximate
    try:
        value = Decimal(str(raw.get("value")))
    except (InvalidOperation, ValueError):
        raise invalid(f"Invalid {parameter}.value", f"{parameter}.value") from None  # approximate
    if not value.is_finite() or value <= 0 or value != value.quantize(Decimal("0.01")):
        raise invalid(f"Invalid {parameter}.value", f"{parameter}.value")  # approximate
    currency = str(raw.get("currency") or "")
    if currency not in CURRENCIES:
        raise invalid(f"Invalid {parameter}.currency", f"{parameter}.currency")  # approximate
    return value, currency


def amount(value: Decimal, currency: str) -> JSON:
    """An Amount object."""
    return {"value": str(value.quantize(Decimal("0.01"))), "currency": currency}


def check_metadata(metadata: Any) -> None:
    """YooKassa's limits: at most 16 keys, keys up to 32 characters, values up to 512."""
    if metadata is None:
        return
    if not isinstance(metadata, dict) or len(metadata) > 16:
        raise invalid("Invalid metadata", "metadata")  # approximate
    for key, value in metadata.items():
        if len(str(key)) > 32 or (value is not None and len(str(value)) > 512):
            raise invalid("Invalid metadata", "metadata")  # approximate


def check_receipt(receipt: Any, total: Decimal) -> None:
    """A 54-FZ receipt: a customer contact, items with vat codes (or a tax system), items adding up to the amount."""
    if not isinstance(receipt, dict):
        raise invalid("Invalid receipt", "receipt")  # approximate
    customer = receipt.get("customer") or {}
    if not (customer.get("email") or customer.get("phone") or receipt.get("email") or receipt.get("phone")):
        raise invalid("Receipt customer email or phone is missing", "receipt.customer")  # approximate
    items = receipt.get("items")
    if not isinstance(items, list) or not items:
        raise invalid("Receipt items are missing", "receipt.items")  # approximate
    items_total = Decimal(0)
    for index, item in enumerate(items):
        where = f"receipt.items[{index}]"
        if not isinstance(item, dict) or not item.get("description"):
            raise invalid(f"Invalid {where}.description", f"{where}.description")  # approximate
        if item.get("vat_code") is None and receipt.get("tax_system_code") is None:
            raise invalid(f"Invalid {where}.vat_code", f"{where}.vat_code")  # approximate
        value, _ = money(item.get("amount"), f"{where}.amount")
        try:
            quantity = Decimal(str(item.get("quantity")))
        except (InvalidOperation, ValueError):
            raise invalid(f"Invalid {where}.quantity", f"{where}.quantity") from None  # approximate
        items_total += value * quantity
    if items_total.quantize(Decimal("0.01"), ROUND_HALF_UP) != total:
        raise invalid("Sum of receipt items amounts does not match the payment amount", "receipt")  # approximate


@dataclass
class Payment:
    """A payment as the fake keeps it: the public object plus what the API does not show."""

    data: JSON
    capture: bool
    shop_id: str
    created: datetime
    refunded: Decimal = Decimal(0)
    save_method: bool = False
    refund_ids: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        """The payment id."""
        return str(self.data["id"])

    @property
    def status(self) -> str:
        """pending / waiting_for_capture / succeeded / canceled."""
        return str(self.data["status"])

    @property
    def value(self) -> Decimal:
        """The amount's value."""
        return Decimal(self.data["amount"]["value"])

    @property
    def currency(self) -> str:
        """The amount's currency."""
        return str(self.data["amount"]["currency"])

    def view(self) -> JSON:
        """A copy of the public object."""
        return copy.deepcopy(self.data)


def new_payment(body: JSON, *, shop_id: str, gateway_id: str, test: bool, checkout_url: str) -> Payment:
    """Validate a create-payment request and build the pending payment (or a paid one for a saved method)."""
    value, currency = money(body.get("amount"), "amount")
    description = body.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > 128):
        raise invalid("Invalid description", "description")  # approximate
    metadata = body.get("metadata")
    check_metadata(metadata)
    if body.get("receipt") is not None:
        check_receipt(body["receipt"], value)
    saved_method = body.get("payment_method_id")
    confirmation = body.get("confirmation")
    now = datetime.now(UTC)
    pid = object_id()
    data: JSON = {
        "id": pid,
        "status": "pending",
        "amount": amount(value, currency),
        "recipient": {"account_id": shop_id, "gateway_id": gateway_id},
        "created_at": timestamp(now),
        "test": test,
        "paid": False,
        "refundable": False,
        "metadata": dict(metadata or {}),
    }
    if description is not None:
        data["description"] = description
    if confirmation is not None:
        data["confirmation"] = _confirmation(confirmation, pid, checkout_url)
    elif saved_method is None:
        raise invalid("Parameter confirmation is missing", "confirmation")  # approximate
    method_data = body.get("payment_method_data")
    if isinstance(method_data, dict) and method_data.get("type"):
        data["payment_method"] = {"type": method_data["type"], "id": pid, "saved": False, "status": "inactive"}
    if body.get("receipt") is not None:
        data["receipt_registration"] = "pending"
    payment = Payment(data, capture=bool(body.get("capture", False)), shop_id=shop_id, created=now)
    payment.save_method = bool(body.get("save_payment_method"))
    return payment


def _confirmation(raw: Any, pid: str, checkout_url: str) -> JSON:
    if not isinstance(raw, dict) or raw.get("type") not in CONFIRMATION_TYPES:
        raise invalid("Invalid confirmation.type", "confirmation.type")  # approximate
    kind = raw["type"]
    out: JSON = {"type": kind}
    url = f"{checkout_url}?orderId={pid}"
    if kind == "redirect":
        if not raw.get("return_url"):
            raise invalid("Parameter confirmation.return_url is missing", "confirmation.return_url")  # approximate
        out.update(return_url=raw["return_url"], confirmation_url=url)
        if raw.get("enforce") is not None:
            out["enforce"] = bool(raw["enforce"])
    elif kind == "embedded":
        out["confirmation_token"] = "ct-" + pid
    elif kind == "qr":
        out["confirmation_data"] = url
    elif kind == "mobile_application":
        out["confirmation_url"] = url
    return out


def mark_paid(payment: Payment, *, commission: Decimal, card_last4: str = "4477") -> None:
    """The user completed the payment: succeeded (capture=true) or waiting_for_capture."""
    if payment.status != "pending":
        raise ValueError(f"payment {payment.id} is {payment.status}, not pending")
    now = datetime.now(UTC)
    data = payment.data
    method = data.get("payment_method") or {"type": "bank_card", "id": payment.id}
    method.update(saved=payment.save_method, status="active" if payment.save_method else "inactive")
    if method["type"] == "bank_card":
        method["title"] = f"Bank card *{card_last4}"
        method["card"] = {
            "first6": "555555",
            "last4": card_last4,
            "expiry_month": "12",
            "expiry_year": str(now.year + 4),
            "card_type": "MasterCard",
            "issuer_country": "RU",
        }
    data["payment_method"] = method
    data["paid"] = True
    data["authorization_details"] = {
        "rrn": str(secrets.randbelow(10**12)).zfill(12),
        "auth_code": str(secrets.randbelow(10**6)).zfill(6),
        "three_d_secure": {"applied": False},
    }
    if payment.capture:
        _succeed(payment, commission, now)
    else:
        data["status"] = "waiting_for_capture"
        data["expires_at"] = timestamp(now + CAPTURE_WINDOW)


def _succeed(payment: Payment, commission: Decimal, now: datetime) -> None:
    data = payment.data
    data["status"] = "succeeded"
    data["captured_at"] = timestamp(now)
    data.pop("expires_at", None)
    data["refundable"] = True
    income = (payment.value * (1 - commission)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    data["income_amount"] = amount(income, payment.currency)
    if "receipt_registration" in data:
        data["receipt_registration"] = "succeeded"


def capture(payment: Payment, body: JSON, *, commission: Decimal) -> None:
    """POST /payments/{id}/capture: waiting_for_capture -> succeeded (a smaller amount captures part of it)."""
    if payment.status != "waiting_for_capture":
        raise invalid(  # approximate wording
            f"Incorrect payment status: {payment.status}. Only a payment in waiting_for_capture can be captured",
            "payment_id",
        )
    if body.get("amount") is not None:
        value, currency = money(body["amount"], "amount")
        if currency != payment.currency or value > payment.value:
            raise invalid("Invalid amount: it must not exceed the payment amount", "amount")  # approximate
        payment.data["amount"] = amount(value, currency)
    _succeed(payment, commission, datetime.now(UTC))


def cancel(payment: Payment, reason: str, *, by_merchant: bool) -> None:
    """Cancel: by the merchant (API, only waiting_for_capture) or by YooKassa/the bank/the user (any unpaid state)."""
    allowed = ("waiting_for_capture",) if by_merchant else ("pending", "waiting_for_capture")
    if payment.status not in allowed:
        if not by_merchant:
            raise ValueError(f"payment {payment.id} is {payment.status}; only an unfinished payment can be canceled")
        raise invalid(  # approximate wording
            f"Incorrect payment status: {payment.status}. Only a payment in waiting_for_capture can be canceled",
            "payment_id",
        )
    data = payment.data
    data.update(status="canceled", paid=False, refundable=False)
    data.pop("expires_at", None)
    data["cancellation_details"] = {"party": CANCEL_PARTY.get(reason, "yoo_money"), "reason": reason}
    if "receipt_registration" in data:
        data["receipt_registration"] = "canceled"


def new_refund(payment: Payment, body: JSON) -> JSON:
    """POST /refunds for a succeeded payment; at most what is left of it. Returns the (succeeded) refund."""
    value, currency = money(body.get("amount"), "amount")
    if payment.status != "succeeded":
        raise invalid(  # approximate wording
            f"Incorrect payment status: {payment.status}. Only a succeeded payment can be refunded", "payment_id"
        )
    if currency != payment.currency or value > payment.value - payment.refunded:
        raise invalid("Refund amount exceeds the amount available for refund", "amount")  # approximate
    if body.get("receipt") is not None:
        check_receipt(body["receipt"], value)
    refund: JSON = {
        "id": object_id("0015"),
        "payment_id": payment.id,
        "status": "succeeded",
        "created_at": timestamp(),
        "amount": amount(value, currency),
    }
    if body.get("description"):
        refund["description"] = str(body["description"])[:250]
    if body.get("receipt") is not None:
        refund["receipt_registration"] = "succeeded"
    payment.refunded += value
    payment.refund_ids.append(refund["id"])
    payment.data["refunded_amount"] = amount(payment.refunded, currency)
    payment.data["refundable"] = payment.refunded < payment.value
    return refund
