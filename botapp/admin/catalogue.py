"""Catalogue: the AI models (price, provider, cost) and the loyalty levels."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.decorators import display

from botapp.admin.base import ActivationActionsMixin, count_of
from botapp.models import (
    AIModel,
    GenRequest,
    Level,
    TgUser,
)


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
            "description",
            "description_en",
        )

    def clean_capabilities(self):
        value = self.cleaned_data.get("capabilities")
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValidationError(_('Capabilities must be a JSON object, e.g. {"max_input_images": 3}.'))
        return value

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
        "sort_order",
        "requests_count",
    )
    list_display_links = ("display_name",)
    list_editable = ("price", "is_active", "sort_order")
    list_filter = ("kind", "provider", "is_active")
    search_fields = ("slug", "name", "provider_model_id")
    ordering = ("kind", "sort_order", "id")
    readonly_fields = ("created_at", "updated_at")
    actions = ("activate", "deactivate")
    prepopulated_fields = {"slug": ("name",)}
    fieldsets = (
        (None, {"fields": ("emoji", "name", "slug", "kind", "is_active", "sort_order", "price")}),
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
        (_("Descriptions"), {"fields": ("description", "description_en")}),
        (_("Timestamps"), {"fields": ("created_at", "updated_at")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(req_count=count_of(GenRequest, "ai_model"))

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
