"""Domain exceptions. Each has a stable `code` (the bot shows the matching catalogue text) and an
English `message` fit to show a person (the admin shows it as is)."""

from __future__ import annotations

from decimal import Decimal


class DomainError(Exception):
    code = "error"
    default_message = "The operation could not be completed."

    def __init__(self, message: str | None = None, **params: object) -> None:
        self.params = params
        self.message = message or self.default_message.format(**params)
        super().__init__(self.message)


class InvalidAmount(DomainError):
    code = "invalid_amount"
    default_message = "The amount must be a positive number with at most 2 decimal places."


class UserNotFound(DomainError):
    code = "user_not_found"
    default_message = "No such user."


class UserBanned(DomainError):
    code = "user_banned"
    default_message = "This account is blocked."


class InsufficientFunds(DomainError):
    code = "insufficient_funds"
    default_message = "Not enough tokens: {required} needed, {available} available."

    def __init__(self, *, required: Decimal, available: Decimal) -> None:
        self.required = required
        self.available = available
        self.shortfall = required - available
        super().__init__(required=required, available=available, shortfall=self.shortfall)


class DuplicateOperation(DomainError):
    code = "duplicate_operation"
    default_message = "This operation was already performed with different data."


class NothingToRefund(DomainError):
    code = "nothing_to_refund"
    default_message = "There is no charge to refund."


# --- generation ----------------------------------------------------------------------------------
class ModelUnavailable(DomainError):
    code = "model_unavailable"
    default_message = "This model is not available now."


class InvalidPrompt(DomainError):
    code = "invalid_prompt"
    default_message = "The prompt is empty."


class PromptTooLong(DomainError):
    code = "prompt_too_long"
    default_message = "The prompt is too long: {length} characters, at most {limit}."


class TooManyImages(DomainError):
    code = "too_many_images"
    default_message = "Too many photos: at most {limit}."


class InvalidParameter(DomainError):
    code = "invalid_parameter"
    default_message = "Unsupported value {value!r} for {name}."


class TooManyReferences(DomainError):
    code = "too_many_references"
    default_message = "Too many reference images: at most {limit}."


class ReferencesExclusive(DomainError):
    code = "references_exclusive"
    default_message = "Reference images cannot be combined with a first or last frame or an extension."


class LastFrameNeedsFirst(DomainError):
    code = "last_frame_needs_first"
    default_message = "A last frame needs a first frame."


class CannotExtend(DomainError):
    code = "cannot_extend"
    default_message = "This video cannot be extended."


class ExtensionTooLong(DomainError):
    code = "extension_too_long"
    default_message = "An extension would make the video longer than {limit} s."


class CannotEditVideo(DomainError):
    code = "cannot_edit_video"
    default_message = "Only a video this bot made for you with a model that edits by conversation can be edited."


class DraftUnavailable(DomainError):
    code = "draft_unavailable"
    default_message = "The full render of this draft is not available: its model was retired or switched off."


class PriceChanged(DomainError):
    code = "price_changed"
    default_message = "The price changed to {price}. Check the new price and confirm again."


class TooManyInFlight(DomainError):
    code = "too_many_in_flight"
    default_message = "You already have {limit} generations in progress. Wait for one to finish."


class InvalidTransition(DomainError):
    code = "invalid_transition"
    default_message = "The request is not in a state that allows this."


# --- promocodes and referrals --------------------------------------------------------------------
class PromoNotFound(DomainError):
    code = "promo_not_found"
    default_message = "There is no such promocode."


class PromoInactive(DomainError):
    code = "promo_inactive"
    default_message = "This promocode is no longer active."


class PromoNotYetValid(DomainError):
    code = "promo_not_yet_valid"
    default_message = "This promocode is not valid yet."


class PromoExpired(DomainError):
    code = "promo_expired"
    default_message = "This promocode has expired."


class PromoExhausted(DomainError):
    code = "promo_exhausted"
    default_message = "This promocode has been used up."


class PromoAlreadyUsed(DomainError):
    code = "promo_already_used"
    default_message = "You have already used this promocode."


class PromoFirstTopupOnly(DomainError):
    code = "promo_first_topup_only"
    default_message = "This promocode is only for the first top-up."


class ReferralNotAllowed(DomainError):
    code = "referral_not_allowed"
    default_message = "This invitation cannot be applied."


# --- payments ------------------------------------------------------------------------------------
class PaymentError(DomainError):
    code = "payment_error"
    default_message = "The payment could not be processed."


class PackageUnavailable(PaymentError):
    code = "package_unavailable"
    default_message = "This package is not available any more."


class InvoiceReplaced(PaymentError):
    code = "invoice_replaced"
    default_message = (
        "This invoice is no longer valid: its promocode moved to a newer invoice or was used on another "
        "payment. Pay the newest invoice or open the top-up menu again."
    )


class InvoiceExpired(PaymentError):
    code = "invoice_expired"
    default_message = "This invoice has expired. Open the top-up menu again for a new one."


# --- Star subscriptions (botapp.services.subscriptions) ------------------------------------------
class PlanUnavailable(PaymentError):
    code = "plan_unavailable"
    default_message = "This subscription plan is not available any more."


class PlanChanged(PaymentError):
    code = "plan_changed"
    default_message = "The price of this plan has changed. Open the plan again for a new link."


class SubscriptionExists(PaymentError):
    code = "subscription_exists"
    default_message = "You already have this subscription (paid until {until})."


class SubscriptionRunning(PaymentError):
    code = "subscription_running"
    default_message = (
        "You already have the subscription {plan} until {until}. To change plans, cancel it and subscribe "
        "to the new one after it ends."
    )


class SubscriptionNotPayable(PaymentError):
    code = "subscription_not_payable"
    default_message = "This subscription link has already been paid or is no longer valid."


class UnknownSubscription(PaymentError):
    code = "unknown_subscription"
    default_message = "No subscription of ours has this invoice."


class SubscriptionNotChangeable(PaymentError):
    code = "subscription_not_changeable"
    default_message = "This subscription cannot be changed now."
