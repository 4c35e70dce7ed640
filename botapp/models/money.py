"""Money: promocodes, payments, Star subscriptions and the append-only ledger (`Transaction`)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from django.utils.translation import gettext_lazy as _

from botapp.models.catalogue import SubscriptionPlan, TopUpPackage
from botapp.models.common import money_field
from botapp.models.generation import GenRequest
from botapp.models.users import TgUser


class Promocode(models.Model):
    class Kind(models.TextChoices):
        BONUS_TOKENS = "bonus_tokens", _("Bonus tokens")
        TOPUP_DISCOUNT = "topup_discount", _("Discount % on a top-up")
        TOPUP_BONUS = "topup_bonus", _("Bonus % on a top-up")

    code = models.CharField(_("code"), max_length=64, unique=True, help_text=_("Case-insensitive; stored upper-case."))
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    value = models.DecimalField(_("value"), max_digits=10, decimal_places=2)
    max_uses = models.PositiveIntegerField(_("max uses"), null=True, blank=True, help_text=_("Empty: unlimited."))
    uses_count = models.PositiveIntegerField(_("times used"), default=0)
    per_user_limit = models.PositiveIntegerField(_("uses per user"), default=1)
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    first_topup_only = models.BooleanField(_("first top-up only"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    description = models.CharField(_("description"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name_plural = _("promocodes")
        verbose_name = _("promocode")
        constraints = [
            models.UniqueConstraint(Upper("code"), name="promocode_code_upper_unique"),
            models.CheckConstraint(condition=Q(value__gt=0), name="promocode_value_positive"),
            models.CheckConstraint(
                condition=Q(max_uses__isnull=True) | Q(uses_count__lte=models.F("max_uses")),
                name="promocode_uses_within_max",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    def save(self, *args, **kwargs):
        self.code = self.code.strip().upper()
        super().save(*args, **kwargs)


class PromocodeActivation(models.Model):
    promocode = models.ForeignKey(
        Promocode, verbose_name=_("promocode"), on_delete=models.PROTECT, related_name="activations"
    )
    user = models.ForeignKey(TgUser, verbose_name=_("user"), on_delete=models.CASCADE, related_name="promo_activations")
    uses = models.PositiveIntegerField(_("uses"), default=1)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    # For top-up codes: the activation waits for a top-up; `consumed_by` is the payment that used it.
    consumed_by = models.ForeignKey(
        "Payment",
        verbose_name=_("used by payment"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="promo_activations",
    )
    consumed_at = models.DateTimeField(_("used at"), null=True, blank=True)
    # For top-up codes: the one pending payment whose invoice carries the code now (see
    # botapp.services.payments). One column, so one payment at a time; set by a locked UPDATE.
    reserved_by = models.OneToOneField(
        "Payment",
        verbose_name=_("reserved by payment"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="promo_reservation",
    )

    class Meta:
        verbose_name_plural = _("promocode activations")
        verbose_name = _("promocode activation")
        constraints = [
            models.UniqueConstraint(fields=["promocode", "user"], name="promo_activation_once"),
            models.CheckConstraint(
                condition=Q(reserved_by__isnull=True) | Q(consumed_at__isnull=True),
                name="promo_activation_reserved_only_unconsumed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.promocode} by {self.user_id}"


class StarSubscription(models.Model):
    """A user's subscription to a plan. pending (the invoice link was made) -> active (paid; renewed by
    each recurring charge) -> cancelled (the user turned renewal off: it runs to `period_end`) or lapsed
    (the renewal did not come). `charge_id` is the first charge's telegram_payment_charge_id, which
    editUserStarSubscription takes."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Awaiting payment")
        ACTIVE = "active", _("Active")
        CANCELLED = "cancelled", _("Cancelled (runs to the end of the period)")
        LAPSED = "lapsed", _("Lapsed")

    user = models.ForeignKey(
        TgUser, verbose_name=_("user"), on_delete=models.PROTECT, related_name="star_subscriptions"
    )
    plan = models.ForeignKey(
        SubscriptionPlan, verbose_name=_("plan"), on_delete=models.PROTECT, related_name="subscriptions"
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    invoice_payload = models.CharField(_("invoice payload"), max_length=128, unique=True)
    invoice_link = models.CharField(_("invoice link"), max_length=255, blank=True)
    price_stars = models.PositiveIntegerField(_("price a month, ⭐"))
    charge_id = models.CharField(_("first charge ID"), max_length=255, unique=True, null=True, blank=True)
    last_charge_id = models.CharField(_("last charge ID"), max_length=255, blank=True)
    period_start = models.DateTimeField(_("period start"), null=True, blank=True)
    period_end = models.DateTimeField(_("paid until"), null=True, blank=True, db_index=True)
    renewals = models.PositiveIntegerField(_("paid months"), default=0)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    cancelled_at = models.DateTimeField(_("cancelled"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("Stars subscription")
        verbose_name_plural = _("Stars subscriptions")
        indexes = [models.Index(fields=["user", "status"], name="starsub_user_status")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.user_id} → {self.plan_id} ({self.status})"


class Payment(models.Model):
    class Provider(models.TextChoices):
        TELEGRAM_STARS = "telegram_stars", _("Telegram Stars")
        YOOKASSA = "yookassa", _("YooKassa")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")
        REFUNDED = "refunded", _("Refunded")

    user = models.ForeignKey(TgUser, verbose_name=_("user"), on_delete=models.PROTECT, related_name="payments")
    provider = models.CharField(_("provider"), max_length=16, choices=Provider.choices)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    package = models.ForeignKey(
        TopUpPackage, verbose_name=_("package"), null=True, blank=True, on_delete=models.SET_NULL
    )
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2, help_text=_("What the user pays."))
    currency = models.CharField(_("currency"), max_length=8)
    tokens = money_field(verbose_name=_("tokens"), help_text=_("Purchased tokens credited."))
    bonus_tokens = money_field(
        verbose_name=_("bonus tokens"), help_text=_("Bonus tokens credited (promocode, level perk, package).")
    )
    promocode = models.ForeignKey(
        Promocode, verbose_name=_("promocode"), null=True, blank=True, on_delete=models.SET_NULL
    )
    invoice_payload = models.CharField(_("invoice payload"), max_length=128, unique=True)
    provider_charge_id = models.CharField(_("provider charge ID"), max_length=255, null=True, blank=True)
    raw = models.JSONField(_("raw provider data"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    paid_at = models.DateTimeField(_("paid"), null=True, blank=True)
    refunded_at = models.DateTimeField(_("refunded"), null=True, blank=True)
    # A Stars subscription's charge (the first one and each renewal): the subscription it pays for,
    # and the end of the period it pays (Telegram's subscription_expiration_date).
    subscription = models.ForeignKey(
        "StarSubscription",
        verbose_name=_("subscription"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="payments",
    )
    period_end = models.DateTimeField(_("paid until"), null=True, blank=True)

    class Meta:
        verbose_name_plural = _("payments")
        verbose_name = _("payment")
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_charge_id"],
                condition=Q(provider_charge_id__isnull=False),
                name="payment_charge_id_unique",
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="payment_amount_non_negative"),
        ]
        # The dashboard's revenue, paying users and activity: payments by the time they were paid.
        indexes = [models.Index(fields=["paid_at"], name="payment_paid_at")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.provider} {self.amount} {self.currency} ({self.status})"


class Transaction(models.Model):
    """One row of the append-only ledger: a signed change of one bucket of one balance."""

    class Kind(models.TextChoices):
        DEPOSIT = "deposit", _("Deposit")
        CHARGE = "charge", _("Charge")
        REFUND = "refund", _("Refund")
        BONUS = "bonus", _("Bonus")
        REFERRAL = "referral", _("Referral reward")
        PROMO = "promo", _("Promocode")
        ADMIN_ADJUSTMENT = "admin_adjustment", _("Admin adjustment")
        PAYMENT_REFUND = "payment_refund", _("Payment refunded")

    class Bucket(models.TextChoices):
        MAIN = "main", _("Main")
        BONUS = "bonus", _("Bonus")

    user = models.ForeignKey(TgUser, verbose_name=_("user"), on_delete=models.PROTECT, related_name="transactions")
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    bucket = models.CharField(_("balance bucket"), max_length=8, choices=Bucket.choices, default=Bucket.MAIN)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2, help_text=_("Signed."))
    balance_after = models.DecimalField(
        _("balance after"), max_digits=12, decimal_places=2, help_text=_("The bucket after.")
    )
    gen_request = models.ForeignKey(
        GenRequest,
        verbose_name=_("generation"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="transactions",
    )
    payment = models.ForeignKey(
        Payment, verbose_name=_("payment"), null=True, blank=True, on_delete=models.PROTECT, related_name="transactions"
    )
    promocode = models.ForeignKey(
        Promocode,
        verbose_name=_("promocode"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="transactions",
    )
    description = models.CharField(_("description"), max_length=255, blank=True)
    operation_key = models.CharField(
        _("operation key"), max_length=128, db_index=True, help_text=_("The caller's idempotency key.")
    )
    idempotency_key = models.CharField(_("idempotency key"), max_length=160, unique=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name_plural = _("ledger")
        verbose_name = _("ledger entry")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="tx_user_recent")]
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="tx_amount_non_zero"),
            models.CheckConstraint(condition=Q(balance_after__gte=0), name="tx_balance_after_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount:+} ({self.bucket})"
