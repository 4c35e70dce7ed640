"""The catalogue: AI models, loyalty levels, top-up packages and subscription plans."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from botapp.capabilities import Capabilities
from botapp.models.common import ZERO
from botapp.pricing import Quote, quote


class AIModel(models.Model):
    class Kind(models.TextChoices):
        IMAGE = "image", _("Image")
        VIDEO = "video", _("Video")

    class Provider(models.TextChoices):
        GEMINI_IMAGE = "google-gemini-image", _("Google Gemini image (Nano Banana)")
        IMAGEN = "google-imagen", _("Google Imagen (shut down: history only)")
        VEO = "google-veo", _("Google Veo")
        OMNI = "google-omni", _("Google Gemini Omni (Interactions API)")
        DEMO = "demo", _("Offline demo")

    class Lifecycle(models.TextChoices):
        """Google's stage of the model id (botapp/services/lifecycle.py acts on it)."""

        PREVIEW = "preview", _("Preview")
        GA = "ga", _("GA")
        DEPRECATED = "deprecated", _("Deprecated")
        RETIRED = "retired", _("Retired")

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
    pricing = models.JSONField(
        _("pricing rule"),
        default=dict,
        blank=True,
        help_text=_(
            'Optional: per_second (a video rate, or {resolution: rate}), resolution_prices {resolution: price}, '
            'resolution {resolution: multiplier}, audio_off (a multiplier). Empty: every request costs the price.'
        ),
    )
    paused_reason = models.CharField(
        _("paused because"),
        max_length=255,
        blank=True,
        help_text=_("Set when the bot paused the model itself (e.g. Google retired the model ID)."),
    )
    paused_at = models.DateTimeField(_("paused"), null=True, blank=True)
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
    costs_usd = models.JSONField(
        _("cost by resolution, USD"),
        default=dict,
        blank=True,
        help_text=_(
            '{resolution: USD}: per image (an image model) or per second (a video model) at that resolution, '
            'e.g. {"1K": "0.067", "4K": "0.151"}. A resolution not named costs the flat cost.'
        ),
    )
    # The lifecycle (botapp/services/lifecycle.py): warned 14 and 3 days before the shutdown; on the shutdown
    # date, or on Google's "not found", a model with a successor switches to it by itself.
    status = models.CharField(
        _("lifecycle"), max_length=12, choices=Lifecycle.choices, default=Lifecycle.GA, db_index=True
    )
    deprecation_date = models.DateField(_("deprecated since"), null=True, blank=True)
    shutdown_date = models.DateField(
        _("shutdown date"), null=True, blank=True, help_text=_("The day Google stops serving this model ID.")
    )
    successor = models.ForeignKey(
        "self",
        verbose_name=_("successor"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="predecessors",
        help_text=_("The model its users move to when it shuts down (the same kind, never itself)."),
    )
    switched_at = models.DateTimeField(
        _("switched to the successor"), null=True, blank=True, help_text=_("Set when the bot retired it by itself.")
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
    def caps(self) -> Capabilities:
        return Capabilities.parse(self.capabilities)

    @property
    def max_input_images(self) -> int:
        return self.caps.max_input_images

    @property
    def max_prompt_length(self) -> int:
        return self.caps.max_prompt_length

    @property
    def aspect_ratios(self) -> list[str]:
        return list(self.caps.aspect_ratios)

    @property
    def durations(self) -> list[int]:
        return list(self.caps.durations)

    @property
    def resolutions(self) -> list[str]:
        return list(self.caps.resolutions)

    def unit_cost_usd(self, params: dict | None = None) -> Decimal:
        """Google's cost of one image, or of one second of video, at the request's resolution."""
        resolution = (params or {}).get("resolution")
        table = self.costs_usd if isinstance(self.costs_usd, dict) else {}
        if resolution in table:
            try:
                return Decimal(str(table[resolution]))
            except ArithmeticError:
                pass
        return self.cost_per_video_second_usd if self.kind == self.Kind.VIDEO else self.cost_per_image_usd

    def quote(self, params: dict, variants: int = 1) -> Quote:
        """The price of a request with these (validated) options: see botapp.services.pricing."""
        return quote(price=self.price, rule=self.pricing, kind=self.kind, params=params, variants=variants)


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


class PromptStyle(models.Model):
    """A style preset the options screen offers: it wraps the user's description in a template."""

    class Applies(models.TextChoices):
        ANY = "", _("Images and videos")
        IMAGE = "image", _("Images")
        VIDEO = "video", _("Videos")

    name = models.CharField(_("name"), max_length=64)
    name_en = models.CharField(_("name (English)"), max_length=64, blank=True)
    emoji = models.CharField(_("emoji"), max_length=8, blank=True)
    prompt_template = models.TextField(
        _("prompt template"),
        help_text=_('The final prompt; {prompt} is replaced by the description, e.g. "{prompt}, watercolour".'),
    )
    example_image = models.ImageField(_("example image"), upload_to="styles/", blank=True)
    applies_to = models.CharField(_("for"), max_length=8, choices=Applies.choices, blank=True, default="")
    is_active = models.BooleanField(_("active"), default=True, db_index=True)
    sort_order = models.PositiveIntegerField(_("sort order"), default=100)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("prompt style")
        verbose_name_plural = _("prompt styles")
        ordering = ["sort_order", "id"]

    def __str__(self) -> str:
        return f"{self.emoji} {self.name}".strip()
