"""Catalogue: the AI models (price, provider, cost) and the loyalty levels."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.decorators import action, display

from botapp.admin.base import ActivationActionsMixin, count_of
from botapp.capabilities import Capabilities, CapabilitiesError
from botapp.models import (
    AIModel,
    GenRequest,
    Level,
    TgUser,
)
from botapp.pricing import MAX_PRICE, PricingError, quote, validate_rule
from botapp.services import control


# --- catalogue -----------------------------------------------------------------------------------
class AIModelForm(forms.ModelForm):
    class Meta:
        model = AIModel
        fields = (
            "emoji",
            "name",
            "slug",
            "kind",
            "is_active",
            "sort_order",
            "price",
            "provider",
            "provider_model_id",
            "api_backend",
            "cost_per_image_usd",
            "cost_per_video_second_usd",
            "capabilities",
            "default_params",
            "pricing",
            "description",
            "description_en",
        )

    def clean_capabilities(self):
        value = self.cleaned_data.get("capabilities")
        if value is None:
            return {}
        try:
            Capabilities.parse(value, strict=True)
        except CapabilitiesError as exc:
            raise ValidationError(str(exc)) from None
        return value

    def clean(self):
        cleaned = super().clean()
        caps = Capabilities.parse(cleaned.get("capabilities") or {})
        kind = cleaned.get("kind")
        rule = cleaned.get("pricing")
        if "pricing" in cleaned and kind:
            try:
                cleaned["pricing"] = validate_rule(rule, kind=kind, resolutions=caps.resolutions) or {}
            except PricingError as exc:
                self.add_error("pricing", str(exc))
        defaults = cleaned.get("default_params") or {}
        for key, allowed in (
            ("aspect_ratio", caps.aspect_ratios),
            ("resolution", caps.resolutions),
            ("duration_seconds", caps.durations),
        ):
            if key in defaults and allowed and defaults[key] not in allowed:
                self.add_error(
                    "default_params",
                    _("%(key)s %(value)s is not in the capabilities.")
                    % {
                        "key": key,
                        "value": defaults[key],
                    },
                )
        if cleaned.get("price") and kind and not self.errors:
            # The dearest option combination must stay storable (10 digits) once multiplied by variants.
            worst = max(
                (
                    quote(
                        price=cleaned["price"],
                        rule=cleaned.get("pricing"),
                        kind=kind,
                        params={"resolution": r, "duration_seconds": max(caps.durations or [0]) or None},
                        variants=caps.max_variants,
                    ).total
                    for r in (caps.resolutions or (None,))
                ),
                default=cleaned["price"],
            )
            if worst > MAX_PRICE:
                self.add_error("pricing", _("The dearest option would cost more than %(max)s.") % {"max": MAX_PRICE})
        return cleaned

    def clean_default_params(self):
        value = self.cleaned_data.get("default_params")
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValidationError(_("Default parameters must be a JSON object."))
        return value


@admin.register(AIModel)
class AIModelAdmin(ActivationActionsMixin, ModelAdmin):
    form = AIModelForm
    list_display = (
        "display_name",
        "slug",
        "kind",
        "provider",
        "provider_model_id",
        "api_backend",
        "price",
        "is_active",
        "paused",
        "sort_order",
        "requests_count",
    )
    list_display_links = ("display_name",)
    list_editable = ("price", "is_active", "sort_order")
    list_filter = ("kind", "provider", "is_active")
    search_fields = ("slug", "name", "provider_model_id")
    ordering = ("kind", "sort_order", "id")
    readonly_fields = ("created_at", "updated_at", "paused_reason", "paused_at")
    actions = ("activate", "deactivate", "resume")
    prepopulated_fields = {"slug": ("name",)}
    fieldsets = (
        (None, {"fields": ("emoji", "name", "slug", "kind", "is_active", "sort_order", "price")}),
        (
            _("Paused by the bot"),
            {
                "fields": ("paused_reason", "paused_at"),
                "description": _(
                    "Google answered “not found” for the provider model ID, so the bot deactivated the model and "
                    "refunded its waiting requests. Fix the ID below, then tick “active” and save (or use the "
                    "“Resume paused models” action): the pause is cleared."
                ),
            },
        ),
        (_("Provider"), {"fields": ("provider", "provider_model_id", "api_backend")}),
        (
            _("Provider cost (the dashboard's margin)"),
            {
                "fields": ("cost_per_image_usd", "cost_per_video_second_usd"),
                "description": _(
                    "What Google charges per image or per second of video, in US dollars; "
                    "converted to roubles at USD_RUB_RATE."
                ),
            },
        ),
        (_("Capabilities"), {"fields": ("capabilities", "default_params")}),
        (
            _("Price by option"),
            {
                "fields": ("pricing",),
                "description": _(
                    "The price above is one request with the default options. A rule may set a price per second "
                    "of video, a table or multipliers by resolution and an audio-off multiplier; the total is "
                    "multiplied by the number of variants."
                ),
            },
        ),
        (_("Descriptions"), {"fields": ("description", "description_en")}),
        (_("Timestamps"), {"fields": ("created_at", "updated_at")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(req_count=count_of(GenRequest, "ai_model"))

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or obj.paused_at is None:  # the pause section only while the bot has paused it
            fieldsets = [f for f in fieldsets if "paused_at" not in f[1]["fields"]]
        return fieldsets

    def save_model(self, request, obj, form, change):
        if obj.is_active and obj.paused_at is not None:  # the operator switched a paused model back on
            obj.paused_at, obj.paused_reason = None, ""
        super().save_model(request, obj, form, change)
        control.catalogue_changed()  # the bots see the change now, not after their cache's TTL

    @action(description=_("Resume paused models"), permissions=["change"], icon="play_arrow")
    def resume(self, request, queryset) -> None:
        count = control.resume_models(ai_model_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(
            request,
            gettext("Resumed: %(count)s. If Google still does not know a model's ID, its next request pauses it again.")
            % {"count": count},
            messages.SUCCESS if count else messages.WARNING,
        )

    @display(description=_("Paused"))
    def paused(self, obj: AIModel) -> str:
        if obj.paused_at is None:
            return "—"
        return f"{date_format(timezone.localtime(obj.paused_at), 'SHORT_DATETIME_FORMAT')}: {obj.paused_reason}"

    @display(description=_("Model"), ordering="name")
    def display_name(self, obj: AIModel) -> str:
        return str(obj)

    @display(description=_("Generation requests"), ordering="req_count")
    def requests_count(self, obj: AIModel) -> int:
        return obj.req_count


@admin.register(Level)
class LevelAdmin(ModelAdmin):
    list_display = ("number", "name", "name_en", "xp_required", "topup_bonus_percent", "users_count")
    list_editable = ("xp_required", "topup_bonus_percent")
    search_fields = ("name", "name_en")
    ordering = ("number",)

    def get_queryset(self, request):
        users = TgUser.objects.filter(level=OuterRef("number")).order_by().values("level").annotate(n=Count("pk"))
        return (
            super()
            .get_queryset(request)
            .annotate(user_count=Coalesce(Subquery(users.values("n"), output_field=IntegerField()), 0))
        )

    @display(description=_("Users"), ordering="user_count")
    def users_count(self, obj: Level) -> int:
        return obj.user_count
