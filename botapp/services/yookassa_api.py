"""YooKassa through its official SDK (`yookassa`), with what the SDK lacks for a server.

- **A timeout.** The SDK builds a fresh `requests.Session` per call (`ApiClient.get_session`) and passes
  no timeout, so an API that never answers blocks the caller forever. Our client mounts a transport
  adapter that gives every request `YOOKASSA_TIMEOUT_SECONDS` (connect and read), the hook `requests`
  documents for defaults a session lacks.
- **One exception.** The SDK turns a dropped connection into `AttributeError` (it reads the status of a
  `ConnectionError` whose response is None) and a non-JSON error page into a JSON error: here every
  failure is a `GatewayError` that says whether the request may have taken effect (`retryable`: repeat it
  with the same idempotence key) or was refused (`status`, `not_found`).
- **No global state.** The SDK's `Configuration` is class attributes shared by the whole process; our
  client reads the shop from Django's settings on every call and never writes `Configuration`.

Django-free apart from reading settings; no ORM here (botapp/services/card.py is the business logic).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3 import Retry
from yookassa import Payment as SdkPayment
from yookassa import Refund as SdkRefund
from yookassa.client import ApiClient
from yookassa.domain.common import RequestObject, UserAgent
from yookassa.domain.notification import WebhookNotificationFactory

from config.proxies import forwarded_address

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.yookassa.ru/v3"
CENT = Decimal("0.01")


class GatewayError(Exception):
    """YooKassa could not be asked, or refused. `retryable`: the outcome is unknown or the refusal is
    temporary (no answer, a timeout, 5xx, 202 "still processing", 429): the same request with the same
    idempotence key is safe and may succeed. `status`: YooKassa's HTTP status, when it answered."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.code = code

    @property
    def not_found(self) -> bool:
        return self.status == 404


@dataclass(frozen=True)
class RemotePayment:
    """A YooKassa payment as its API shows it (what we use of it)."""

    id: str
    status: str  # pending / waiting_for_capture / succeeded / canceled
    paid: bool
    amount: Decimal
    currency: str
    confirmation_url: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    cancellation: dict[str, Any] = field(default_factory=dict)
    test: bool = False

    def summary(self) -> dict[str, Any]:
        """What is kept in Payment.raw (JSON)."""
        out: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "amount": str(self.amount),
            "currency": self.currency,
        }
        if self.cancellation:
            out["cancellation"] = self.cancellation
        if self.test:
            out["test"] = True
        return out


@dataclass(frozen=True)
class RemoteRefund:
    """A YooKassa refund as its API shows it (what we use of it)."""

    id: str
    payment_id: str
    status: str  # pending / succeeded / canceled
    amount: Decimal
    currency: str

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "amount": str(self.amount), "currency": self.currency}


# --- configuration --------------------------------------------------------------------------------
def configured() -> bool:
    """Card payments can be made: the shop id and its secret key are set."""
    return bool(settings.YOOKASSA_SHOP_ID and settings.YOOKASSA_SECRET_KEY)


def _timeout() -> tuple[float, float]:
    seconds = max(0.1, float(settings.YOOKASSA_TIMEOUT_SECONDS))
    return min(seconds, 5.0), seconds  # (connect, read)


@functools.cache
def _user_agent() -> UserAgent:
    return UserAgent()  # reads the OS release: once per process


# --- the SDK's client, with a timeout and without its global configuration --------------------------
class _TimeoutAdapter(HTTPAdapter):
    """A transport adapter that gives each request our timeout (the SDK passes none)."""

    def __init__(self, timeout: tuple[float, float], **kwargs: Any) -> None:
        self.timeout = timeout
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


class _Client(ApiClient):
    """`yookassa.client.ApiClient` configured from Django's settings (not `yookassa.Configuration`)."""

    def __init__(self) -> None:  # deliberately not ApiClient.__init__: it reads the global Configuration
        if not configured():
            raise GatewayError("YooKassa is not configured (YOOKASSA_SHOP_ID, YOOKASSA_SECRET_KEY)")
        self.configuration = SimpleNamespace(verify=None)
        self.endpoint = (settings.YOOKASSA_API_URL or DEFAULT_API_URL).rstrip("/")
        self.shop_id = settings.YOOKASSA_SHOP_ID
        self.shop_password = settings.YOOKASSA_SECRET_KEY
        self.auth_token = None
        self.timeout = _timeout()
        self.max_attempts = 2
        self.user_agent = _user_agent()

    def get_session(self) -> requests.Session:
        session = requests.Session()
        # As the SDK: a 202 ("still processing") to a POST is asked again; beyond that no retries here
        # (read=0: a request that may have reached YooKassa is repeated by the caller, with its key).
        retries = Retry(
            total=self.max_attempts,
            connect=1,
            read=0,
            status=self.max_attempts,
            backoff_factor=0.5,
            allowed_methods=["POST"],
            status_forcelist=[202],
            raise_on_status=False,
        )
        adapter = _TimeoutAdapter(self.timeout, max_retries=retries)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def request(self, method="", path="", query_params=None, headers=None, body=None):
        try:
            if isinstance(body, RequestObject):
                body.validate()
                body = dict(body)
        except (ValueError, TypeError) as exc:
            raise GatewayError(f"invalid request: {exc}") from exc
        request_headers = self.prepare_request_headers(headers)
        try:
            response = self.execute(body, method, path, query_params, request_headers)
        except requests.HTTPError as exc:  # the SDK's logging calls raise_for_status() on 4xx/5xx
            if exc.response is None:
                raise GatewayError(f"no answer: {exc}", retryable=True) from exc
            response = exc.response
        except requests.RequestException as exc:  # no connection, reset, timeout: the outcome is unknown
            raise GatewayError(f"no answer: {type(exc).__name__}: {exc}", retryable=True) from exc
        if response.status_code != 200:
            raise _error(response)
        try:
            return response.json()
        except ValueError as exc:
            raise GatewayError("an answer that is not JSON", status=200, retryable=True) from exc


def _error(response: requests.Response) -> GatewayError:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    description = str(body.get("description") or response.reason or "error")
    code = str(body.get("code") or "")
    retryable = status >= 500 or status in (202, 429)
    return GatewayError(
        f"YooKassa answered {status}: {code} {description}".strip(), status=status, retryable=retryable, code=code
    )


class _Payments(SdkPayment):
    """`yookassa.Payment` whose calls go through `_Client`."""

    def __init__(self) -> None:
        self.client = _Client()


# --- the calls we make ----------------------------------------------------------------------------
def create_payment(params: dict[str, Any], *, idempotence_key: str) -> RemotePayment:
    """POST /payments. The same key with the same params answers the same payment (a safe retry)."""
    try:
        response = _Payments.create(params, idempotence_key)
    except GatewayError:
        raise
    except (ValueError, TypeError, AttributeError, KeyError) as exc:  # the SDK refused the params or the answer
        raise GatewayError(f"the SDK failed: {type(exc).__name__}: {exc}") from exc
    return _remote(response)


def get_payment(payment_id: str) -> RemotePayment:
    """GET /payments/{id}."""
    try:
        response = _Payments.find_one(payment_id)
    except GatewayError:
        raise
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise GatewayError(f"the SDK failed: {type(exc).__name__}: {exc}") from exc
    return _remote(response)


class _Refunds(SdkRefund):
    """`yookassa.Refund` whose calls go through `_Client`."""

    def __init__(self) -> None:
        self.client = _Client()


def _sdk_call(call: Any) -> Any:
    try:
        return call()
    except GatewayError:
        raise
    except (ValueError, TypeError, AttributeError, KeyError) as exc:  # the SDK refused the params or the answer
        raise GatewayError(f"the SDK failed: {type(exc).__name__}: {exc}") from exc


def create_refund(*, payment_id: str, amount: Decimal, currency: str, idempotence_key: str) -> RemoteRefund:
    """POST /refunds (the whole `amount` of a succeeded payment back to the card). The same key with the
    same params answers the same refund: a request whose answer was lost is asked again safely."""
    params = {"payment_id": payment_id, "amount": {"value": f"{amount:.2f}", "currency": currency}}
    return _remote_refund(_sdk_call(lambda: _Refunds.create(params, idempotence_key)))


def get_refund(refund_id: str) -> RemoteRefund:
    """GET /refunds/{id}."""
    return _remote_refund(_sdk_call(lambda: _Refunds.find_one(refund_id)))


def list_refunds(*, since: datetime) -> list[RemoteRefund]:
    """GET /refunds created since `since`, newest first, every page."""
    return [_remote_refund(item) for item in _list(_Refunds.list, {"created_at.gte": since.isoformat()})]


def list_payments(*, since: datetime, status: str) -> list[RemotePayment]:
    """GET /payments in `status` created since `since`, newest first, every page."""
    return [_remote(item) for item in _list(_Payments.list, {"created_at.gte": since.isoformat(), "status": status})]


def _list(call: Any, query: dict[str, Any], *, page_size: int = 100, pages: int = 100) -> list[Any]:
    """The items of a list call, following `next_cursor` (at most `pages` pages)."""
    items: list[Any] = []
    cursor = None
    for _ in range(pages):
        params = {**query, "limit": page_size, **({"cursor": cursor} if cursor else {})}
        response = _sdk_call(lambda params=params: call(params))
        items.extend(response.items or [])
        cursor = getattr(response, "next_cursor", None)
        if not cursor:
            break
    return items


def _remote_refund(response: Any) -> RemoteRefund:
    try:
        return RemoteRefund(
            id=str(response.id),
            payment_id=str(response.payment_id),
            status=str(response.status),
            amount=Decimal(response.amount.value).quantize(CENT),
            currency=str(response.amount.currency),
        )
    except (AttributeError, TypeError, ValueError, ArithmeticError) as exc:
        raise GatewayError(f"an answer without a refund: {type(exc).__name__}: {exc}", retryable=True) from exc


def _remote(response: Any) -> RemotePayment:
    try:
        confirmation = getattr(response, "confirmation", None)
        cancellation = getattr(response, "cancellation_details", None)
        return RemotePayment(
            id=str(response.id),
            status=str(response.status),
            paid=bool(response.paid),
            amount=Decimal(response.amount.value).quantize(CENT),
            currency=str(response.amount.currency),
            confirmation_url=str(getattr(confirmation, "confirmation_url", "") or ""),
            metadata=dict(response.metadata or {}),
            cancellation=dict(cancellation) if cancellation is not None else {},
            test=bool(getattr(response, "test", False)),
        )
    except (AttributeError, TypeError, ValueError, ArithmeticError) as exc:
        raise GatewayError(f"an answer without a payment: {type(exc).__name__}: {exc}", retryable=True) from exc


# --- webhooks ---------------------------------------------------------------------------------------
class BadNotification(ValueError):
    """A webhook body that is not a YooKassa notification about a payment or a refund."""


@dataclass(frozen=True)
class Notification:
    event: str  # payment.succeeded, payment.canceled, payment.waiting_for_capture, refund.succeeded, ...
    object_id: str

    @property
    def about_payment(self) -> bool:
        return self.event.startswith("payment.")


def parse_notification(data: Any) -> Notification:
    """The SDK's reading of a webhook body (`WebhookNotificationFactory`); BadNotification if it is none."""
    try:
        parsed = WebhookNotificationFactory().create(data)
        object_id = parsed.object.id
    except (ValueError, TypeError, KeyError, AttributeError, ArithmeticError) as exc:
        raise BadNotification(f"{type(exc).__name__}: {exc}") from None
    event = parsed.event
    if not isinstance(event, str) or not event or not isinstance(object_id, str) or not object_id:
        raise BadNotification("no event or object id")
    if len(object_id) > 64:
        raise BadNotification("object id too long")
    return Notification(event=event, object_id=object_id)


# --- who may call the webhook ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            log.error("YOOKASSA_TRUSTED_IPS: %r is not an address or a network: ignored", entry)
    return tuple(networks)


def is_trusted(address: str, networks: Iterable[str] | None = None) -> bool:
    """Whether `address` is inside YooKassa's networks (YOOKASSA_TRUSTED_IPS)."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    entries = tuple(settings.YOOKASSA_TRUSTED_IPS if networks is None else networks)
    return any(ip in network for network in _networks(entries))


# The address that called us, behind YOOKASSA_TRUST_FORWARDED_FOR proxies (the N-th from the right of
# X-Forwarded-For; "" when there are fewer): the same rule as the admin's login throttle.
client_address = forwarded_address
