"""Catalogue: the AI models (price, provider, cost, lifecycle) and the loyalty levels.

The lifecycle (botapp/services/lifecycle.py): each model's status is a badge in the list, with its shutdown
date and successor; the form refuses a successor that is the model itself, of the other kind or that makes a
cycle, and an active model whose status is retired (the list's "active" tick too). "Check with Google" (a
button above the list) shows the model ids our keys can see and flags the catalogue's ids Google does not
list.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
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
from botapp.services import control, lifecycle

Lifecycle = AIModel.Lifecycle
LIFECYCLE_LABELS = {
    Lifecycle.PREVIEW: "info",
    Lifecycle.GA: "success",
    Lifecycle.DEPRECATED: "warning",
    Lifecycle.RETIRED: "danger",
}
SUCCESSOR_ERRORS = {
    "self": _("A model cannot be its own successor."),
    "kind": _("The successor must make the same kind (image or video)."),
    "cycle": _("This successor makes a cycle: its own successors lead back to this model."),
    "retired": _("The successor is retired: its users could not move there. Choose a model that is not retired."),
}
RETIRED_AND_ACTIVE = _("A retired model cannot be active: untick “active” or choose another lifecycle status.")


def check_lifecycle(form: forms.ModelForm, cleaned: dict) -> None:
    """The lifecycle rules of a model form (also the list's editable "active" column)."""
    status = cleaned.get("status", form.instance.status)
    if cleaned.get("is_active", form.instance.is_active) and status == Lifecycle.RETIRED:
        form.add_error("is_active" if "is_active" in form.fields else None, RETIRED_AND_ACTIVE)
    if "successor" not in cleaned:
        return
    model = AIModel(pk=form.instance.pk, kind=cleaned.get("kind") or form.instance.kind)
    successor = cleaned.get("successor")
    try:
        lifecycle.check_successor(model, successor)
        if successor is not None and successor.status == Lifecycle.RETIRED and status != Lifecycle.RETIRED:
            raise lifecycle.SuccessorError("retired")  # (a retired model's history may point anywhere)
    except lifecycle.SuccessorError as exc:
        form.add_error("successor", SUCCESSOR_ERRORS.get(exc.code, exc.code))


def clean_costs(value, resolutions: tuple[str, ...]) -> tuple[dict, str | None]:
    """{resolution: USD}: non-negative numbers, for resolutions the model offers. Returns (the table with
    its numbers as strings, an error or None)."""
    if value in (None, ""):
        return {}, None
    if not isinstance(value, dict):
        return {}, gettext("The cost by resolution must be a JSON object {resolution: USD}.")
    out: dict[str, str] = {}
    for resolution, cost in value.items():
        if resolution not in resolutions:
            offered = ", ".join(resolutions) or gettext("none")
            return {}, gettext("%(resolution)s is not a resolution of this model (it offers: %(offered)s).") % {
                "resolution": resolution,
                "offered": offered,
            }
        try:
            number = Decimal(str(cost)) if not isinstance(cost, bool) else None
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite() or number < 0:
            return {}, gettext("The cost of %(resolution)s must be a number, zero or more.") % {
                "resolution": resolution
            }
        out[resolution] = str(cost)
    return out, None


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
            "costs_usd",
            "status",
            "deprecation_date",
            "shutdown_date",
            "successor",
            "capabilities",
            "default_params",
            "pricing",
            "description",
            "description_en",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "status" in self.fields:  # a form posted without it keeps the model's status
            self.fields["status"].required = False

    def clean_status(self):
        return self.cleaned_data.get("status") or self.instance.status or Lifecycle.GA

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
        if "costs_usd" in cleaned:
            costs, error = clean_costs(cleaned.get("costs_usd"), caps.resolutions)
            if error:
                self.add_error("costs_usd", error)
            else:
                cleaned["costs_usd"] = costs
        check_lifecycle(self, cleaned)
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


class AIModelListForm(forms.ModelForm):
    """A row of the list (its editable columns): an active model is never retired."""

    def clean(self):
        cleaned = super().clean()
        check_lifecycle(self, cleaned)
        return cleaned


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
        "lifecycle_badge",
        "shutdown_date",
        "successor",
        "paused",
        "sort_order",
        "requests_count",
    )
    list_display_links = ("display_name",)
    list_editable = ("price", "is_active", "sort_order")
    list_filter = ("kind", "provider", "is_active", "status")
    list_select_related = ("successor",)
    search_fields = ("slug", "name", "provider_model_id")
    ordering = ("kind", "sort_order", "id")
    readonly_fields = ("created_at", "updated_at", "paused_reason", "paused_at", "switched_at")
    actions = ("activate", "deactivate", "resume")
    actions_list = ("check_with_google",)
    prepopulated_fields = {"slug": ("name",)}
    fieldsets = (
        (None, {"fields": ("emoji", "name", "slug", "kind", "is_active", "sort_order", "price")}),
        (
            _("Lifecycle"),
            {
                "fields": ("status", "deprecation_date", "shutdown_date", "successor", "switched_at"),
                "description": _(
                    "Google's stage of this model ID. The operators are warned 14 and 3 days before the shutdown "
                    "date; on that day (or when Google answers “not found”) the model is retired and its users "
                    "move to the successor by themselves: waiting generations that cost the same or less there "
                    "move, the others are refunded. Without a successor it stays on, and the dashboard and a "
                    "daily alert say so."
                ),
            },
        ),
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
                "fields": ("cost_per_image_usd", "cost_per_video_second_usd", "costs_usd"),
                "description": _(
                    "What Google charges per image or per second of video, in US dollars; "
                    "converted to roubles at USD_RUB_RATE. The cost by resolution overrides the flat cost "
                    "for the resolutions it names."
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

    def get_changelist_form(self, request, **kwargs):
        kwargs.setdefault("form", AIModelListForm)
        return super().get_changelist_form(request, **kwargs)

    def save_model(self, request, obj, form, change):
        if obj.is_active and obj.paused_at is not None:  # the operator switched a paused model back on
            obj.paused_at, obj.paused_reason = None, ""
        if obj.switched_at is not None and obj.status != Lifecycle.RETIRED:  # brought back: a new life
            obj.switched_at = None
        super().save_model(request, obj, form, change)
        control.catalogue_changed()  # the bots see the change now, not after their cache's TTL

    @action(description=_("Check with Google"), url_path="check-with-google", permissions=["change"], icon="cloud_sync")
    def check_with_google(self, request: HttpRequest) -> HttpResponse:
        """The model ids Google lists for our keys, and the catalogue's ids it does not list (a page)."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        checks = lifecycle.check_with_google()
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request,
            "admin/botapp/aimodel/check_with_google.html",
            {
                **self.admin_site.each_context(request),
                "title": gettext("Check with Google"),
                "opts": self.opts,
                "checks": checks,
                "missing": sum(len(check.missing) for check in checks),
                "changelist_url": reverse("admin:botapp_aimodel_changelist"),
            },
        )

    @display(description=_("Lifecycle"), ordering="status", label=LIFECYCLE_LABELS)
    def lifecycle_badge(self, obj: AIModel) -> tuple[str, str]:
        return obj.status, obj.get_status_display()

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
