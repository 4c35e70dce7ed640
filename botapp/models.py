"""The data model of the bot. Field names are the contract the services, the bot and the workers use.

Balances change only through `botapp.services.balance.BalanceService`; every change is a
`Transaction` row, and the sum of a user's ledger always equals the balance.
"""

from __future__ import annotations

import secrets
from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper

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
    telegram_id = models.BigIntegerField(unique=True)
    username = models.CharField(max_length=64, blank=True)
    first_name = models.CharField(max_length=128, blank=True)
    last_name = models.CharField(max_length=128, blank=True)
    language_code = models.CharField(max_length=16, blank=True)
    is_premium = models.BooleanField(default=False)
    is_banned = models.BooleanField(default=False, db_index=True)
    ban_reason = models.CharField(max_length=255, blank=True)
    bot_blocked = models.BooleanField(default=False, help_text="The user blocked the bot (403 on send).")
    referral_code = models.CharField(max_length=16, unique=True, default=new_referral_code)
    referred_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="referrals"
    )
    level = models.PositiveIntegerField(default=1)
    xp = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    last_seen_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        verbose_name = "Telegram user"
        verbose_name_plural = "Telegram users"

    def __str__(self) -> str:
        name = f"@{self.username}" if self.username else (self.first_name or "user")
        return f"{name} ({self.telegram_id})"

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)


class UserBalance(models.Model):
    user = models.OneToOneField(TgUser, on_delete=models.CASCADE, related_name="balance")
    balance = money_field(help_text="Purchased tokens.")
    bonus_balance = money_field(help_text="Bonus tokens (spent first).")
    total_deposited = money_field()
    total_spent = money_field()
    total_refunded = money_field()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
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
        IMAGE = "image", "Image"
        VIDEO = "video", "Video"

    class Provider(models.TextChoices):
        GEMINI_IMAGE = "google-gemini-image", "Google Gemini image (Nano Banana)"
        IMAGEN = "google-imagen", "Google Imagen"
        VEO = "google-veo", "Google Veo"
        DEMO = "demo", "Offline demo"

    class Backend(models.TextChoices):
        DEFAULT = "", "From settings"
        GEMINI = "gemini", "Gemini API (API key)"
        VERTEX = "vertex", "Vertex AI"

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=128)
    emoji = models.CharField(max_length=8, blank=True)
    kind = models.CharField(max_length=8, choices=Kind.choices, db_index=True)
    provider = models.CharField(max_length=32, choices=Provider.choices)
    provider_model_id = models.CharField(
        max_length=128, help_text="The provider's model id (Google renames and retires ids: edit here)."
    )
    api_backend = models.CharField(max_length=8, choices=Backend.choices, blank=True, default="")
    price = models.DecimalField(max_digits=10, decimal_places=2)
    is_active = models.BooleanField(default=False, db_index=True)
    sort_order = models.PositiveIntegerField(default=100)
    description = models.TextField(blank=True)
    description_en = models.TextField(blank=True)
    capabilities = models.JSONField(
        default=dict,
        blank=True,
        help_text="max_input_images, aspect_ratios, durations, resolutions, max_prompt_length, "
        "supports_negative_prompt",
    )
    default_params = models.JSONField(default=dict, blank=True)
    # What the provider charges us, in US dollars as Google prices it (the dashboard's margin converts
    # at settings.USD_RUB_RATE): per image made (an image model) and per second of video (a video model).
    cost_per_image_usd = models.DecimalField(
        "Cost per image, USD",
        max_digits=10,
        decimal_places=4,
        default=Decimal("0"),
        help_text="The provider's price of one generated image (e.g. 0.039). For the dashboard's margin.",
    )
    cost_per_video_second_usd = models.DecimalField(
        "Cost per video second, USD",
        max_digits=10,
        decimal_places=4,
        default=Decimal("0"),
        help_text="The provider's price of one second of generated video (e.g. 0.15). For the dashboard's margin.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "sort_order", "id"]
        verbose_name = "AI model"
        verbose_name_plural = "AI models"
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

    number = models.PositiveIntegerField(unique=True)
    name = models.CharField(max_length=64)
    name_en = models.CharField(max_length=64, blank=True)
    xp_required = models.PositiveIntegerField(unique=True)
    topup_bonus_percent = models.DecimalField(max_digits=5, decimal_places=2, default=ZERO)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"{self.number}. {self.name}"


class TopUpPackage(models.Model):
    name = models.CharField(max_length=64, blank=True)
    tokens = models.DecimalField(max_digits=10, decimal_places=2)
    price_stars = models.PositiveIntegerField(help_text="Price in Telegram Stars (XTR).")
    price_rub = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    price_usd = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    bonus_percent = models.DecimalField(max_digits=5, decimal_places=2, default=ZERO)
    is_active = models.BooleanField(default=True)
    sort_order = models.PositiveIntegerField(default=100)

    class Meta:
        ordering = ["sort_order", "tokens"]
        constraints = [models.CheckConstraint(condition=Q(tokens__gt=0), name="package_tokens_positive")]

    def __str__(self) -> str:
        return f"{self.tokens} tokens / {self.price_stars}⭐"


class Promocode(models.Model):
    class Kind(models.TextChoices):
        BONUS_TOKENS = "bonus_tokens", "Bonus tokens"
        TOPUP_DISCOUNT = "topup_discount", "Discount % on a top-up"
        TOPUP_BONUS = "topup_bonus", "Bonus % on a top-up"

    code = models.CharField(max_length=64, unique=True, help_text="Case-insensitive; stored upper-case.")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    value = models.DecimalField(max_digits=10, decimal_places=2)
    max_uses = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: unlimited.")
    uses_count = models.PositiveIntegerField(default=0)
    per_user_limit = models.PositiveIntegerField(default=1)
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    first_topup_only = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    description = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
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
    promocode = models.ForeignKey(Promocode, on_delete=models.PROTECT, related_name="activations")
    user = models.ForeignKey(TgUser, on_delete=models.CASCADE, related_name="promo_activations")
    uses = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    # For top-up codes: the activation waits for a top-up; `consumed_by` is the payment that used it.
    consumed_by = models.ForeignKey(
        "Payment", null=True, blank=True, on_delete=models.SET_NULL, related_name="promo_activations"
    )
    consumed_at = models.DateTimeField(null=True, blank=True)
    # For top-up codes: the one pending payment whose invoice carries the code now (see
    # botapp.services.payments). One column, so one payment at a time; set by a locked UPDATE.
    reserved_by = models.OneToOneField(
        "Payment", null=True, blank=True, on_delete=models.SET_NULL, related_name="promo_reservation"
    )

    class Meta:
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
        TELEGRAM_STARS = "telegram_stars", "Telegram Stars"
        YOOKASSA = "yookassa", "YooKassa"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        REFUNDED = "refunded", "Refunded"

    user = models.ForeignKey(TgUser, on_delete=models.PROTECT, related_name="payments")
    provider = models.CharField(max_length=16, choices=Provider.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    package = models.ForeignKey(TopUpPackage, null=True, blank=True, on_delete=models.SET_NULL)
    amount = models.DecimalField(max_digits=12, decimal_places=2, help_text="What the user pays.")
    currency = models.CharField(max_length=8)
    tokens = money_field(help_text="Purchased tokens credited.")
    bonus_tokens = money_field(help_text="Bonus tokens credited (promocode, level perk, package).")
    promocode = models.ForeignKey(Promocode, null=True, blank=True, on_delete=models.SET_NULL)
    invoice_payload = models.CharField(max_length=128, unique=True)
    provider_charge_id = models.CharField(max_length=255, null=True, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
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
        CREATED = "created", "Created"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    IN_FLIGHT = (Status.CREATED, Status.QUEUED, Status.RUNNING)
    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    user = models.ForeignKey(TgUser, on_delete=models.CASCADE, related_name="gen_requests")
    ai_model = models.ForeignKey(AIModel, null=True, on_delete=models.PROTECT, related_name="requests")
    model = models.CharField(max_length=64, help_text="Legacy: the model slug as text.")
    kind = models.CharField(max_length=8, choices=AIModel.Kind.choices, default=AIModel.Kind.IMAGE)
    prompt = models.TextField()
    negative_prompt = models.TextField(blank=True)
    input_images = models.JSONField(
        default=list, blank=True, help_text="[{file_id, file_unique_id, mime_type, size}] from Telegram."
    )
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CREATED)
    price = money_field(help_text="Tokens charged.")
    idempotency_key = models.CharField(max_length=128, unique=True, null=True, blank=True)
    provider_operation_id = models.CharField(max_length=255, blank=True, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    results = models.JSONField(
        default=list, blank=True, help_text="[{kind, path, mime_type, tg_file_id, width, height}]"
    )
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    chat_id = models.BigIntegerField(null=True, blank=True)
    status_message_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    next_poll_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    xp_awarded = models.PositiveIntegerField(
        default=0, help_text="XP this request gave when it succeeded; taken back (once) if it is refunded."
    )

    class Meta:
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
        DEPOSIT = "deposit", "Deposit"
        CHARGE = "charge", "Charge"
        REFUND = "refund", "Refund"
        BONUS = "bonus", "Bonus"
        REFERRAL = "referral", "Referral reward"
        PROMO = "promo", "Promocode"
        ADMIN_ADJUSTMENT = "admin_adjustment", "Admin adjustment"
        PAYMENT_REFUND = "payment_refund", "Payment refunded"

    class Bucket(models.TextChoices):
        MAIN = "main", "Main"
        BONUS = "bonus", "Bonus"

    user = models.ForeignKey(TgUser, on_delete=models.PROTECT, related_name="transactions")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    bucket = models.CharField(max_length=8, choices=Bucket.choices, default=Bucket.MAIN)
    amount = models.DecimalField(max_digits=12, decimal_places=2, help_text="Signed.")
    balance_after = models.DecimalField(max_digits=12, decimal_places=2, help_text="The bucket after.")
    gen_request = models.ForeignKey(
        GenRequest, null=True, blank=True, on_delete=models.PROTECT, related_name="transactions"
    )
    payment = models.ForeignKey(Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="transactions")
    promocode = models.ForeignKey(
        Promocode, null=True, blank=True, on_delete=models.PROTECT, related_name="transactions"
    )
    description = models.CharField(max_length=255, blank=True)
    operation_key = models.CharField(max_length=128, db_index=True, help_text="The caller's idempotency key.")
    idempotency_key = models.CharField(max_length=160, unique=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
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

    day = models.DateField(primary_key=True)
    built_at = models.DateTimeField()
    active_users = models.PositiveIntegerField(default=0, help_text="Distinct users active on the day.")

    def __str__(self) -> str:
        return f"rollups of {self.day}"


class DailyLedger(models.Model):
    """Dashboard rollup: the ledger of one day by kind, bucket and the generation's model."""

    day = models.DateField()
    kind = models.CharField(max_length=20)
    bucket = models.CharField(max_length=8)
    ai_model_id = models.BigIntegerField(null=True)
    rows = models.PositiveIntegerField()
    amount = models.DecimalField(max_digits=16, decimal_places=2)

    class Meta:
        indexes = [models.Index(fields=["day"], name="dailyledger_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.kind}/{self.bucket} model {self.ai_model_id}: {self.amount}"


class DailyGenerations(models.Model):
    """Dashboard rollup: the generation requests made on one day by model, status and error code;
    for the succeeded ones the images or video seconds made and a histogram of the time to result."""

    day = models.DateField()
    ai_model_id = models.BigIntegerField(null=True)
    status = models.CharField(max_length=16)
    error_code = models.CharField(max_length=64, blank=True)
    requests = models.PositiveIntegerField()
    refunded = models.PositiveIntegerField(default=0)
    units = models.PositiveBigIntegerField(default=0, help_text="Images, or seconds of video, made.")
    durations = models.JSONField(default=dict, blank=True, help_text="{bucket's upper bound in s: count}")

    class Meta:
        indexes = [models.Index(fields=["day"], name="dailygen_day")]

    def __str__(self) -> str:
        return f"{self.day} model {self.ai_model_id} {self.status}: {self.requests}"


class DailyActiveUser(models.Model):
    """Dashboard rollup: a user who interacted with the bot on a day (one row per user and day)."""

    day = models.DateField()
    user_id = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "user_id"], name="dailyactive_day_user")]

    def __str__(self) -> str:
        return f"{self.day}: user {self.user_id}"


class UserSettings(models.Model):
    user = models.OneToOneField(TgUser, on_delete=models.CASCADE, related_name="settings")
    language = models.CharField(max_length=2, choices=Language.choices, default=Language.RU)
    default_image_model = models.ForeignKey(
        AIModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    default_video_model = models.ForeignKey(
        AIModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    aspect_ratio = models.CharField(max_length=8, default="1:1")
    video_duration = models.PositiveSmallIntegerField(default=8)
    video_resolution = models.CharField(max_length=8, default="720p")
    send_as_file = models.BooleanField(default=False)
    notifications = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "User settings"

    def __str__(self) -> str:
        return f"settings of {self.user_id}"


class Broadcast(models.Model):
    """A message to many users, sent in the background (botapp.services.broadcasts).

    The audience is a combination of segments (every field left empty means "anyone"); users who
    blocked the bot or are banned never receive it. When it starts, one `BroadcastRecipient` row per
    user is created (in batches), and each row is claimed by a conditional UPDATE before its send.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        SENDING = "sending", "Sending"
        PAUSED = "paused", "Paused"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    EDITABLE = (Status.DRAFT, Status.SCHEDULED)
    ACTIVE = (Status.SENDING, Status.PAUSED)

    class Paid(models.TextChoices):
        ANY = "", "Anyone"
        PAID = "paid", "Paid at least once"
        NEVER = "never", "Never paid"

    class Screen(models.TextChoices):
        """A bot screen a button can open (values: botapp.callbacks.MenuAction)."""

        NONE = "", "No screen"
        MAIN = "main", "Main menu"
        IMAGE = "img", "Create an image"
        VIDEO = "vid", "Create a video"
        TOPUP = "top", "Top up"
        BALANCE = "bal", "Balance"
        PROMO = "promo", "Promocode"
        INVITE = "inv", "Invite friends"

    text = models.TextField(help_text="Telegram HTML: <b>, <i>, <u>, <s>, <a href>, <code>, <pre>, <blockquote>, "
                            "<tg-spoiler>; escape other <, & as &lt; &amp;.")
    photo = models.ImageField(upload_to="broadcasts/", null=True, blank=True)
    photo_file_id = models.CharField(max_length=255, blank=True, editable=False)
    button_text = models.CharField(max_length=64, blank=True)
    button_url = models.URLField(blank=True)
    button_screen = models.CharField(max_length=8, choices=Screen.choices, blank=True, default="")
    # --- audience (combined with AND; empty = no condition) ---
    active_within_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Seen by the bot within the last N days."
    )
    paid = models.CharField(max_length=8, choices=Paid.choices, blank=True, default="")
    has_balance = models.BooleanField(default=False, help_text="Only users with tokens (purchased or bonus).")
    language = models.CharField(max_length=2, choices=Language.choices, blank=True, default="")
    level_min = models.PositiveIntegerField(null=True, blank=True)
    level_max = models.PositiveIntegerField(null=True, blank=True)
    never_generated = models.BooleanField(default=False, help_text="Only users who never requested a generation.")
    joined_after = models.DateTimeField(null=True, blank=True)
    joined_before = models.DateTimeField(null=True, blank=True)
    referred_only = models.BooleanField(default=False, help_text="Only users invited by someone.")
    # --- sending ---
    send_at = models.DateTimeField(null=True, blank=True, help_text="Empty: as soon as it is started.")
    allow_paid_broadcast = models.BooleanField(
        default=False, help_text="Telegram's paid broadcasts: up to 1000 messages/s, 0.1 Star per message."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True)
    created_by = models.CharField(max_length=150, blank=True, editable=False)
    total = models.PositiveIntegerField(default=0)
    delivered = models.PositiveIntegerField(default=0)
    blocked = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    unknown = models.PositiveIntegerField(default=0)
    # Recipients are created in batches by user id; the last id done, and whether all are there.
    prepared_upto = models.BigIntegerField(default=0, editable=False)
    prepared = models.BooleanField(default=False, editable=False)
    # The one runner sending it now (a lease renewed while it runs; see services/broadcasts.py).
    runner_token = models.CharField(max_length=32, blank=True, editable=False)
    runner_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [("send_broadcast", "Can start, preview, pause, resume and cancel broadcasts")]

    def __str__(self) -> str:
        return f"Broadcast #{self.pk} ({self.status})"


class BroadcastRecipient(models.Model):
    """One user of a broadcast: pending -> sending (claimed, committed before the send) -> a result.

    A row left in `sending` by a runner that died has an unknown outcome: it is marked `unknown` and
    never sent again (the message may have arrived)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        BLOCKED = "blocked", "Blocked the bot"
        FAILED = "failed", "Failed"
        UNKNOWN = "unknown", "Outcome unknown"

    broadcast = models.ForeignKey(Broadcast, on_delete=models.CASCADE, related_name="recipients")
    user = models.ForeignKey(TgUser, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    # pending: not before this moment (flood control); sending: the runner that claimed it.
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)
    message_id = models.BigIntegerField(null=True, blank=True)
    error = models.CharField(max_length=255, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["broadcast", "user"], name="broadcast_recipient_once")]
        indexes = [models.Index(fields=["broadcast", "status", "id"], name="bcast_recipient_status")]

    def __str__(self) -> str:
        return f"#{self.broadcast_id} -> {self.user_id} ({self.status})"
