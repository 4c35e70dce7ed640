"""A fake YooKassa (API v3) for tests and the local sandbox, that the official ``yookassa`` SDK talks to.

``FakeYooKassa`` (server.py: HTTP, auth, idempotency, faults, test hooks), ``model.py`` (payments and refunds),
``webhooks.py`` (notifications), ``checkout.py`` (the confirmation page). No Django and no SDK imports here.
"""

from .model import CANCEL_PARTY, ApiFailure
from .server import OPERATIONS, FakeYooKassa, Fault, RecordedRequest
from .webhooks import EVENTS, Attempt, Notification, notification_body

__all__ = [
    "CANCEL_PARTY",
    "EVENTS",
    "OPERATIONS",
    "ApiFailure",
    "Attempt",
    "FakeYooKassa",
    "Fault",
    "Notification",
    "RecordedRequest",
    "notification_body",
]
