"""The data model of the bot. Field names are the contract the services, the bot and the workers use.

Balances change only through `botapp.services.balance.BalanceService`; every change is a
`Transaction` row, and the sum of a user's ledger always equals the balance.
"""

from __future__ import annotations

import secrets
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from django.utils.translation import gettext_lazy as _

ZERO = Decimal("0.00")
REFERRAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def money_field(**kwargs) -> models.DecimalField:
    kwargs.setdefault("default", ZERO)
    return models.DecimalField(max_digits=12, decimal_places=2, **kwargs)


def new_referral_code() -> str:
    return "".join(secrets.choice(REFERRAL_ALPHABET) for _ in range(8))


class Language(models.TextChoices):
    RU = "ru", "Русский"
    EN = "en", "English"


class TgUser(models.Model):
    telegram_id = models.BigIntegerField(_("Telegram ID"), unique=True)
    username = models.CharField(_("username"), max_length=64, blank=True)
    first_name = models.CharField(_("first name"), max_length=128, blank=True)
    last_name = models.CharField(_("last name"), max_length=128, blank=True)
    language_code = models.CharField(_("Telegram language"), max_length=16, blank=True)
    is_premium = models.BooleanField(_("Telegram Premium"), default=False)
    is_banned = models.BooleanField(_("banned"), default=False, db_index=True)
    ban_reason = models.CharField(_("ban reason"), max_length=255, blank=True)
    bot_blocked = models.BooleanField(
        _("blocked the bot"), default=False, help_text=_("The user blocked the bot (403 on send).")
    )
    referral_code = models.CharField(_("referral code"), max_length=16, unique=True, default=new_referral_code)
    referred_by = models.ForeignKey(
        "self",
        verbose_name=_("referred by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="referrals",
    )
    level = models.PositiveIntegerField(_("level"), default=1)
    xp = models.PositiveIntegerField(_("XP"), default=0)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True, db_index=True)

    class Meta:
        verbose_name = _("Telegram user")
        verbose_name_plural = _("Telegram users")
        # Support finds a user by @username whatever the case (botapp.selectors.support).
        indexes = [models.Index(Upper("username"), name="tguser_username_upper")]

    def __str__(self) -> str:
        name = f"@{self.username}" if self.username else (self.first_name or "user")
        return f"{name} ({self.telegram_id})"

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)


class UserBalance(models.Model):
    user = models.OneToOneField(TgUser, verbose_name=_("user"), on_delete=models.CASCADE, related_name="balance")
    balance = money_field(verbose_name=_("balance"), help_text=_("Purchased tokens."))
    bonus_balance = money_field(verbose_name=_("bonus balance"), help_text=_("Bonus tokens (spent first)."))
    total_deposited = money_field(verbose_name=_("total deposited"))
    total_spent = money_field(verbose_name=_("total spent"))
    total_refunded = money_field(verbose_name=_("total refunded"))
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name_plural = _("balances")
        verbose_name = _("balance")
        constraints = [
            models.CheckConstraint(condition=Q(balance__gte=0), name="balance_non_negative"),
            models.CheckConstraint(condition=Q(bonus_balance__gte=0), name="bonus_balance_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.balance} + {self.bonus_balance} bonus"

    @property
    def total(self) -> Decimal:
        return self.balance + self.bonus_balance


class AIModel(models.Model):
    class Kind(models.TextChoices):
        IMAGE = "image", _("Image")
        VIDEO = "video", _("Video")

    class Provider(models.TextChoices):
        GEMINI_IMAGE = "google-gemini-image", _("Google Gemini image (Nano Banana)")
        IMAGEN = "google-imagen", _("Google Imagen")
        VEO = "google-veo", _("Google Veo")
        DEMO = "demo", _("Offline demo")

    class Backend(models.TextChoices):
        DEFAULT = "", _("From settings")
        GEMINI = "gemini", _("Gemini API (API key)")
        VERTEX = "vertex", _("Vertex AI")

    slug = models.SlugField(_("slug"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=128)
    emoji = models.CharField(_("emoji"), max_length=8, blank=True)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, db_index=True)
    provider = models.CharField(_("provider"), max_length=32, choices=Provider.choices)
    provider_model_id = models.CharField(
        _("provider model ID"),
        max_length=128,
        help_text=_("The provider's model id (Google renames and retires ids: edit here)."),
    )
    api_backend = models.CharField(_("API backend"), max_length=8, choices=Backend.choices, blank=True, default="")
    price = models.DecimalField(_("price"), max_digits=10, decimal_places=2)
    is_active = models.BooleanField(_("active"), default=False, db_index=True)
    sort_order = models.PositiveIntegerField(_("sort order"), default=100)
    description = models.TextField(_("description"), blank=True)
    description_en = models.TextField(_("description (English)"), blank=True)
    capabilities = models.JSONField(
        _("capabilities"),
        default=dict,
        blank=True,
        help_text=_(
            "max_input_images, aspect_ratios, durations, resolutions, max_prompt_length, supports_negative_prompt"
        ),
    )
    default_params = models.JSONField(_("default parameters"), default=dict, blank=True)
    # What the provider charges us, in US dollars as Google prices it (the dashboard's margin converts
    # at settings.USD_RUB_RATE): per image made (an image model) and per second of video (a video model).
    cost_per_image_usd = models.DecimalField(
        _("Cost per image, USD"),
        max_digits=10,
        decimal_places=4,
        default=Decimal("0"),
        help_text=_("The provider's price of one generated image (e.g. 0.039). For the dashboard's margin."),
    )
    cost_per_video_second_usd = models.DecimalField(
        _("Cost per video second, USD"),
        max_digits=10,
        decimal_places=4,
        default=Decimal("0"),
        help_text=_("The provider's price of one second of generated video (e.g. 0.15). For the dashboard's margin."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["kind", "sort_order", "id"]
        verbose_name = _("AI model")
        verbose_name_plural = _("AI models")
        constraints = [
            models.CheckConstraint(condition=Q(price__gt=0), name="aimodel_price_positive"),
            models.CheckConstraint(
                condition=Q(cost_per_image_usd__gte=0, cost_per_video_second_usd__gte=0),
                name="aimodel_costs_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.emoji} {self.name}".strip()

    # Capabilities with safe defaults, so a half-filled JSON in the admin never breaks the bot.
    @property
    def max_input_images(self) -> int:
        return int(self.capabilities.get("max_input_images", 0))

    @property
    def max_prompt_length(self) -> int:
        return int(self.capabilities.get("max_prompt_length", 2000))

    @property
    def aspect_ratios(self) -> list[str]:
        return list(self.capabilities.get("aspect_ratios", ["1:1"]))

    @property
    def durations(self) -> list[int]:
        return [int(d) for d in self.capabilities.get("durations", [])]

    @property
    def resolutions(self) -> list[str]:
        return list(self.capabilities.get("resolutions", []))


class Level(models.Model):
    """A level of the loyalty ladder: reached at `xp_required`, may carry a perk."""

    number = models.PositiveIntegerField(_("number"), unique=True)
    name = models.CharField(_("name"), max_length=64)
    name_en = models.CharField(_("name (English)"), max_length=64, blank=True)
    xp_required = models.PositiveIntegerField(_("XP required"), unique=True)
    topup_bonus_percent = models.DecimalField(_("top-up bonus, %"), max_digits=5, decimal_places=2, default=ZERO)

    class Meta:
        verbose_name_plural = _("levels")
        verbose_name = _("level")
        ordering = ["number"]

    def __str__(self) -> str:
        return f"{self.number}. {self.name}"


class TopUpPackage(models.Model):
    name = models.CharField(_("name"), max_length=64, blank=True)
    tokens = models.DecimalField(_("tokens"), max_digits=10, decimal_places=2)
    price_stars = models.PositiveIntegerField(_("price, ⭐"), help_text=_("Price in Telegram Stars (XTR)."))
    price_rub = models.DecimalField(_("price, ₽"), max_digits=10, decimal_places=2, null=True, blank=True)
    price_usd = models.DecimalField(_("price, $"), max_digits=10, decimal_places=2, null=True, blank=True)
    bonus_percent = models.DecimalField(_("bonus, %"), max_digits=5, decimal_places=2, default=ZERO)
    is_active = models.BooleanField(_("active"), default=True)
    sort_order = models.PositiveIntegerField(_("sort order"), default=100)

    class Meta:
        verbose_name_plural = _("top-up packages")
        verbose_name = _("top-up package")
        ordering = ["sort_order", "tokens"]
        constraints = [models.CheckConstraint(condition=Q(tokens__gt=0), name="package_tokens_positive")]

    def __str__(self) -> str:
        return f"{self.tokens} tokens / {self.price_stars}⭐"


class SubscriptionPlan(models.Model):
    """A monthly plan paid in Telegram Stars (a Star subscription: Telegram charges every 30 days).
    Each paid month credits `tokens` (main balance) and `bonus_tokens` (bonus balance) once."""

    name = models.CharField(_("name"), max_length=64)
    name_en = models.CharField(_("name (English)"), max_length=64, blank=True)
    tokens = models.DecimalField(_("tokens a month"), max_digits=10, decimal_places=2)
    bonus_tokens = models.DecimalField(_("bonus tokens a month"), max_digits=10, decimal_places=2, default=ZERO)
    price_stars = models.PositiveIntegerField(
        _("price a month, ⭐"), help_text=_("Telegram Stars every 30 days (Telegram allows at most 10000).")
    )
    description = models.TextField(_("perks"), blank=True, help_text=_("What the plan gives, shown in the bot."))
    description_en = models.TextField(_("perks (English)"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    sort_order = models.PositiveIntegerField(_("sort order"), default=100)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("subscription plan")
        verbose_name_plural = _("subscription plans")
        ordering = ["sort_order", "price_stars"]
        constraints = [
            models.CheckConstraint(condition=Q(tokens__gt=0), name="plan_tokens_positive"),
            models.CheckConstraint(condition=Q(bonus_tokens__gte=0), name="plan_bonus_non_negative"),
            models.CheckConstraint(
                condition=Q(price_stars__gte=1, price_stars__lte=10000), name="plan_price_in_telegram_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}: {self.tokens} tokens / {self.price_stars}⭐ a month"


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


class BotText(models.Model):
    """A text of the bot the operator edits in the admin (e.g. the terms of service); an empty one
    falls back to the catalogue's default (botapp/locales)."""

    class Key(models.TextChoices):
        TERMS = "terms", _("Terms of service (/terms)")
        PAYSUPPORT = "paysupport", _("Payment support (/paysupport)")

    key = models.CharField(_("text"), max_length=32, choices=Key.choices, unique=True)
    text_ru = models.TextField(_("Russian"), blank=True, help_text=_("Telegram HTML. Empty: the default text."))
    text_en = models.TextField(_("English"), blank=True, help_text=_("Telegram HTML. Empty: the default text."))
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("bot text")
        verbose_name_plural = _("bot texts")

    def __str__(self) -> str:
        return str(self.get_key_display())


class SupportRequest(models.Model):
    """A user's message to support from the bot (/paysupport), forwarded to the operators with the
    user's recent payments; answered from the admin ("message a user")."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        ANSWERED = "answered", _("Answered")
        CLOSED = "closed", _("Closed")

    user = models.ForeignKey(TgUser, verbose_name=_("user"), on_delete=models.CASCADE, related_name="support_requests")
    topic = models.CharField(_("topic"), max_length=16, default="payment")
    text = models.TextField(_("text"))
    payments = models.JSONField(_("payments attached"), default=list, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("support request")
        verbose_name_plural = _("support requests")

    def __str__(self) -> str:
        return f"Support request #{self.pk} from {self.user_id} ({self.status})"


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


class GenRequest(models.Model):
    class Status(models.TextChoices):
        CREATED = "created", _("Created")
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    IN_FLIGHT = (Status.CREATED, Status.QUEUED, Status.RUNNING)
    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    user = models.ForeignKey(TgUser, verbose_name=_("user"), on_delete=models.CASCADE, related_name="gen_requests")
    ai_model = models.ForeignKey(
        AIModel, verbose_name=_("AI model"), null=True, on_delete=models.PROTECT, related_name="requests"
    )
    model = models.CharField(_("model code"), max_length=64, help_text=_("Legacy: the model slug as text."))
    kind = models.CharField(_("kind"), max_length=8, choices=AIModel.Kind.choices, default=AIModel.Kind.IMAGE)
    prompt = models.TextField(_("prompt"))
    negative_prompt = models.TextField(_("negative prompt"), blank=True)
    input_images = models.JSONField(
        _("input images"),
        default=list,
        blank=True,
        help_text=_("[{file_id, file_unique_id, mime_type, size}] from Telegram."),
    )
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.CREATED)
    price = money_field(verbose_name=_("price"), help_text=_("Tokens charged."))
    idempotency_key = models.CharField(_("idempotency key"), max_length=128, unique=True, null=True, blank=True)
    provider_operation_id = models.CharField(_("provider operation ID"), max_length=255, blank=True, db_index=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    results = models.JSONField(
        _("results"), default=list, blank=True, help_text=_("[{kind, path, mime_type, tg_file_id, width, height}]")
    )
    error_code = models.CharField(_("error code"), max_length=64, blank=True)
    error_message = models.TextField(_("error message"), blank=True)
    chat_id = models.BigIntegerField(_("chat ID"), null=True, blank=True)
    status_message_id = models.BigIntegerField(_("status message ID"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    queued_at = models.DateTimeField(_("queued"), null=True, blank=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    deadline_at = models.DateTimeField(_("deadline"), null=True, blank=True)
    next_poll_at = models.DateTimeField(_("next poll"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    refunded_at = models.DateTimeField(_("refunded"), null=True, blank=True)
    xp_awarded = models.PositiveIntegerField(
        _("XP awarded"),
        default=0,
        help_text=_("XP this request gave when it succeeded; taken back (once) if it is refunded."),
    )

    class Meta:
        verbose_name_plural = _("generation requests")
        verbose_name = _("generation request")
        indexes = [
            models.Index(fields=["user", "status"], name="genreq_user_status"),
            models.Index(fields=["user", "-created_at"], name="genreq_user_recent"),
            models.Index(fields=["status", "deadline_at"], name="genreq_status_deadline"),
        ]
        constraints = [models.CheckConstraint(condition=Q(price__gte=0), name="genreq_price_non_negative")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.model} [{self.status}]"

    @property
    def charge_key(self) -> str:
        return f"gen:{self.pk}:charge"

    @property
    def refund_key(self) -> str:
        return f"gen:{self.pk}:refund"


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


class DashboardDay(models.Model):
    """A day whose dashboard rollups (the three Daily* tables below) are built; see
    botapp/services/rollups.py. The dashboard computes the days without a row here live."""

    day = models.DateField(_("day"), primary_key=True)
    built_at = models.DateTimeField(_("built"))
    active_users = models.PositiveIntegerField(
        _("active users"), default=0, help_text=_("Distinct users active on the day.")
    )

    class Meta:
        verbose_name = _("dashboard day")
        verbose_name_plural = _("dashboard days")

    def __str__(self) -> str:
        return f"rollups of {self.day}"


class DailyLedger(models.Model):
    """Dashboard rollup: the ledger of one day by kind, bucket and the generation's model."""

    day = models.DateField(_("day"))
    kind = models.CharField(_("kind"), max_length=20)
    bucket = models.CharField(_("balance bucket"), max_length=8)
    ai_model_id = models.BigIntegerField(_("AI model ID"), null=True)
    rows = models.PositiveIntegerField(_("rows"))
    amount = models.DecimalField(_("amount"), max_digits=16, decimal_places=2)

    class Meta:
        verbose_name_plural = _("daily ledger totals")
        verbose_name = _("daily ledger total")
        indexes = [models.Index(fields=["day"], name="dailyledger_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.kind}/{self.bucket} model {self.ai_model_id}: {self.amount}"


class DailyGenerations(models.Model):
    """Dashboard rollup: the generation requests made on one day by model, status and error code;
    for the succeeded ones the images or video seconds made and a histogram of the time to result."""

    day = models.DateField(_("day"))
    ai_model_id = models.BigIntegerField(_("AI model ID"), null=True)
    status = models.CharField(_("status"), max_length=16)
    error_code = models.CharField(_("error code"), max_length=64, blank=True)
    requests = models.PositiveIntegerField(_("requests"))
    refunded = models.PositiveIntegerField(_("refunded"), default=0)
    units = models.PositiveBigIntegerField(_("units"), default=0, help_text=_("Images, or seconds of video, made."))
    durations = models.JSONField(
        _("durations"), default=dict, blank=True, help_text=_("{bucket's upper bound in s: count}")
    )

    class Meta:
        verbose_name_plural = _("daily generations totals")
        verbose_name = _("daily generations total")
        indexes = [models.Index(fields=["day"], name="dailygen_day")]

    def __str__(self) -> str:
        return f"{self.day} model {self.ai_model_id} {self.status}: {self.requests}"


class DailyActiveUser(models.Model):
    """Dashboard rollup: a user who interacted with the bot on a day (one row per user and day)."""

    day = models.DateField(_("day"))
    user_id = models.BigIntegerField(_("user ID"))

    class Meta:
        verbose_name_plural = _("daily active users")
        verbose_name = _("daily active user")
        constraints = [models.UniqueConstraint(fields=["day", "user_id"], name="dailyactive_day_user")]

    def __str__(self) -> str:
        return f"{self.day}: user {self.user_id}"


class UserSettings(models.Model):
    user = models.OneToOneField(TgUser, verbose_name=_("user"), on_delete=models.CASCADE, related_name="settings")
    language = models.CharField(_("language"), max_length=2, choices=Language.choices, default=Language.RU)
    default_image_model = models.ForeignKey(
        AIModel,
        verbose_name=_("default image model"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    default_video_model = models.ForeignKey(
        AIModel,
        verbose_name=_("default video model"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    aspect_ratio = models.CharField(_("aspect ratio"), max_length=8, default="1:1")
    video_duration = models.PositiveSmallIntegerField(_("video duration"), default=8)
    video_resolution = models.CharField(_("video resolution"), max_length=8, default="720p")
    send_as_file = models.BooleanField(_("send as file"), default=False)
    notifications = models.BooleanField(_("notifications"), default=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("user settings")
        verbose_name_plural = _("user settings")

    def __str__(self) -> str:
        return f"settings of {self.user_id}"


class Broadcast(models.Model):
    """A message to many users, sent in the background (botapp.services.broadcasts).

    The audience is a combination of segments (every field left empty means "anyone"); users who
    blocked the bot or are banned never receive it. When it starts, one `BroadcastRecipient` row per
    user is created (in batches), and each row is claimed by a conditional UPDATE before its send.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SCHEDULED = "scheduled", _("Scheduled")
        SENDING = "sending", _("Sending")
        PAUSED = "paused", _("Paused")
        DONE = "done", _("Done")
        CANCELLED = "cancelled", _("Cancelled")

    EDITABLE = (Status.DRAFT, Status.SCHEDULED)
    ACTIVE = (Status.SENDING, Status.PAUSED)

    class Paid(models.TextChoices):
        ANY = "", _("Anyone")
        PAID = "paid", _("Paid at least once")
        NEVER = "never", _("Never paid")

    class Screen(models.TextChoices):
        """A bot screen a button can open (values: botapp.callbacks.MenuAction)."""

        NONE = "", _("No screen")
        MAIN = "main", _("Main menu")
        IMAGE = "img", _("Create an image")
        VIDEO = "vid", _("Create a video")
        TOPUP = "top", _("Top up")
        BALANCE = "bal", _("Balance")
        PROMO = "promo", _("Promocode")
        INVITE = "inv", _("Invite friends")

    text = models.TextField(
        _("text"),
        help_text=_(
            "Telegram HTML: <b>, <i>, <u>, <s>, <a href>, <code>, <pre>, <blockquote>, "
            "<tg-spoiler>; escape other <, & as &lt; &amp;."
        ),
    )
    photo = models.ImageField(_("photo"), upload_to="broadcasts/", null=True, blank=True)
    photo_file_id = models.CharField(_("photo file ID"), max_length=255, blank=True, editable=False)
    button_text = models.CharField(_("button text"), max_length=64, blank=True)
    button_url = models.URLField(_("button URL"), blank=True)
    button_screen = models.CharField(
        _("button opens bot screen"), max_length=8, choices=Screen.choices, blank=True, default=""
    )
    # --- audience (combined with AND; empty = no condition) ---
    active_within_days = models.PositiveIntegerField(
        _("active within days"), null=True, blank=True, help_text=_("Seen by the bot within the last N days.")
    )
    paid = models.CharField(_("has paid"), max_length=8, choices=Paid.choices, blank=True, default="")
    has_balance = models.BooleanField(
        _("has balance"), default=False, help_text=_("Only users with tokens (purchased or bonus).")
    )
    language = models.CharField(_("language"), max_length=2, choices=Language.choices, blank=True, default="")
    level_min = models.PositiveIntegerField(_("level from"), null=True, blank=True)
    level_max = models.PositiveIntegerField(_("level to"), null=True, blank=True)
    never_generated = models.BooleanField(
        _("never generated"), default=False, help_text=_("Only users who never requested a generation.")
    )
    joined_after = models.DateTimeField(_("joined after"), null=True, blank=True)
    joined_before = models.DateTimeField(_("joined before"), null=True, blank=True)
    referred_only = models.BooleanField(
        _("referred only"), default=False, help_text=_("Only users invited by someone.")
    )
    # --- sending ---
    send_at = models.DateTimeField(_("send at"), null=True, blank=True, help_text=_("Empty: as soon as it is started."))
    allow_paid_broadcast = models.BooleanField(
        _("paid broadcast (up to 1000/s)"),
        default=False,
        help_text=_("Telegram's paid broadcasts: up to 1000 messages/s, 0.1 Star per message."),
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True)
    created_by = models.CharField(_("created by"), max_length=150, blank=True, editable=False)
    total = models.PositiveIntegerField(_("total"), default=0)
    delivered = models.PositiveIntegerField(_("delivered"), default=0)
    blocked = models.PositiveIntegerField(_("blocked"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)
    unknown = models.PositiveIntegerField(_("outcome unknown"), default=0)
    # Recipients are created in batches by user id; the last id done, and whether all are there.
    prepared_upto = models.BigIntegerField(_("prepared up to"), default=0, editable=False)
    prepared = models.BooleanField(_("prepared"), default=False, editable=False)
    # The one runner sending it now (a lease renewed while it runs; see services/broadcasts.py).
    runner_token = models.CharField(_("runner token"), max_length=32, blank=True, editable=False)
    runner_until = models.DateTimeField(_("runner lease until"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name_plural = _("broadcasts")
        verbose_name = _("broadcast")
        permissions = [("send_broadcast", "Can start, preview, pause, resume and cancel broadcasts")]

    def __str__(self) -> str:
        return f"Broadcast #{self.pk} ({self.status})"


class BroadcastRecipient(models.Model):
    """One user of a broadcast: pending -> sending (claimed, committed before the send) -> a result.

    A row left in `sending` by a runner that died has an unknown outcome: it is marked `unknown` and
    never sent again (the message may have arrived)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        BLOCKED = "blocked", _("Blocked the bot")
        FAILED = "failed", _("Failed")
        UNKNOWN = "unknown", _("Outcome unknown")

    broadcast = models.ForeignKey(
        Broadcast, verbose_name=_("broadcast"), on_delete=models.CASCADE, related_name="recipients"
    )
    user = models.ForeignKey(TgUser, verbose_name=_("user"), on_delete=models.CASCADE, related_name="+")
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.PENDING)
    # pending: not before this moment (flood control); sending: the runner that claimed it.
    claimed_until = models.DateTimeField(_("claimed until"), null=True, blank=True)
    claim_token = models.CharField(_("claim token"), max_length=32, blank=True)
    message_id = models.BigIntegerField(_("message ID"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=255, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

    class Meta:
        verbose_name_plural = _("broadcast recipients")
        verbose_name = _("broadcast recipient")
        constraints = [models.UniqueConstraint(fields=["broadcast", "user"], name="broadcast_recipient_once")]
        indexes = [models.Index(fields=["broadcast", "status", "id"], name="bcast_recipient_status")]

    def __str__(self) -> str:
        return f"#{self.broadcast_id} -> {self.user_id} ({self.status})"


class SupportMessage(models.Model):
    """A message an operator wrote to one user from the admin, sent in the background
    (botapp.services.support, task `send_support_message`).

    pending -> sending (claimed by a conditional UPDATE, committed before the request goes out) -> sent,
    blocked (403: the user blocked the bot), failed (Telegram refused it, or it could not be sent) or
    unknown (the answer was lost: it may have arrived, so it is never sent again)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        BLOCKED = "blocked", _("Blocked the bot")
        FAILED = "failed", _("Failed")
        UNKNOWN = "unknown", _("Outcome unknown")

    user = models.ForeignKey(TgUser, verbose_name=_("user"), on_delete=models.CASCADE, related_name="support_messages")
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("operator"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    operator_name = models.CharField(
        _("operator login"), max_length=150, blank=True, help_text=_("Kept if the operator's account is deleted.")
    )
    text = models.TextField(_("text"), help_text=_("Telegram HTML, as the operator wrote it."))
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.PENDING)
    error = models.CharField(_("error"), max_length=255, blank=True)
    message_id = models.BigIntegerField(_("Telegram message ID"), null=True, blank=True)
    # One per user and submitted form: a form submitted twice (a double click) writes once.
    idempotency_key = models.CharField(_("idempotency key"), max_length=80, unique=True, null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    claimed_at = models.DateTimeField(_("claimed"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

    class Meta:
        verbose_name = _("support message")
        verbose_name_plural = _("support messages")
        indexes = [models.Index(fields=["user", "-created_at"], name="supportmsg_user_recent")]

    def __str__(self) -> str:
        return f"Support message #{self.pk} to {self.user_id} ({self.status})"
