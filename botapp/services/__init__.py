"""Business logic. Handlers, admin actions, webhooks and tasks are thin and call these."""

from botapp.services.balance import BalanceService, LedgerResult
from botapp.services.generation import GenerationService
from botapp.services.payments import PaymentService
from botapp.services.promo import PromoService
from botapp.services.referral import ReferralService

__all__ = [
    "BalanceService",
    "GenerationService",
    "LedgerResult",
    "PaymentService",
    "PromoService",
    "ReferralService",
]
