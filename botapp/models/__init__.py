"""The data model of the bot, a module per part of the business. Field names are the contract the
services, the bot and the workers use; import every model from `botapp.models`.

Balances change only through `botapp.services.balance.BalanceService`; every change is a
`Transaction` row, and the sum of a user's ledger always equals the balance.
"""

from botapp.models.broadcasts import Broadcast, BroadcastRecipient
from botapp.models.catalogue import AIModel, Level, PromptStyle, SubscriptionPlan, TopUpPackage
from botapp.models.common import REFERRAL_ALPHABET, ZERO, Language, money_field, new_referral_code
from botapp.models.dashboard import DailyActiveUser, DailyGenerations, DailyLedger, DashboardDay
from botapp.models.generation import GenRequest
from botapp.models.money import Payment, Promocode, PromocodeActivation, StarSubscription, Transaction
from botapp.models.support import BotText, SupportMessage, SupportRequest
from botapp.models.users import TgUser, UserBalance, UserSettings

__all__ = [
    "REFERRAL_ALPHABET",
    "ZERO",
    "AIModel",
    "BotText",
    "Broadcast",
    "BroadcastRecipient",
    "DailyActiveUser",
    "DailyGenerations",
    "DailyLedger",
    "DashboardDay",
    "GenRequest",
    "Language",
    "Level",
    "Payment",
    "Promocode",
    "PromocodeActivation",
    "PromptStyle",
    "StarSubscription",
    "SubscriptionPlan",
    "SupportMessage",
    "SupportRequest",
    "TgUser",
    "TopUpPackage",
    "Transaction",
    "UserBalance",
    "UserSettings",
    "money_field",
    "new_referral_code",
]
