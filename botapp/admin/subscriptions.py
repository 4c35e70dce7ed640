"""Money: Star subscription plans (edited by the operator) and the users' subscriptions (read-only: they
change only through botapp.services.subscriptions, from Telegram's payments and updates)."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import admin
from django.utils.formats import number_format
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import ChoicesDropdownFilter, RelatedDropdownFilter
from unfold.decorators import display

from botapp.admin.base import (
    ActivationActionsMixin,
    ExactIdSearchMixin,
    ReadOnlyAdminMixin,
    ReadOnlyInline,
    shortened,
    user_cell,
)
from botapp.models import Payment, StarSubscription, SubscriptionPlan

CHARGE_ID_CHARS = 14
SUBSCRIPTION_LABELS = {
    StarSubscription.Status.PENDING: "info",
    StarSubscription.Status.ACTIVE: "success",
    StarSubscription.Status.CANCELLED: "warning",
    StarSubscription.Status.LAPSED: "",
}


@admin.register(SubscriptionPlan)
class SubscriptionPlanAdmin(ActivationActionsMixin, ModelAdmin):
    """A plan's price applies to new subscriptions only (Telegram keeps charging a subscriber the price of
    their link); its tokens too (a subscriber's months credit what their first month did)."""

    list_display = ("name", "tokens", "bonus_tokens", "price_stars", "stars_per_token", "is_active", "sort_order")
    list_display_links = ("name",)
    list_editable = ("is_active", "sort_order")
    list_filter = ("is_active",)
    search_fields = ("name", "name_en")
    ordering = ("sort_order", "price_stars")
    actions = ("activate", "deactivate")
    fieldsets = (
        (None, {"fields": ("name", "name_en", "tokens", "bonus_tokens", "price_stars", "is_active", "sort_order")}),
        (_("Perks"), {"fields": ("description", "description_en")}),
    )

    @display(description=_("⭐ per token"))
    def stars_per_token(self, obj: SubscriptionPlan) -> str:
        tokens = (obj.tokens or Decimal(0)) + (obj.bonus_tokens or Decimal(0))
        return number_format(Decimal(obj.price_stars) / tokens, 2) if tokens else "-"


class SubscriptionPaymentInline(ReadOnlyInline):
    """The subscription's paid months: one payment per charge."""

    model = Payment
    fk_name = "subscription"
    verbose_name_plural = _("Paid months")
    fields = ("paid_at", "status", "amount", "tokens", "bonus_tokens", "period_end", "provider_charge_id")
    readonly_fields = fields
    ordering = ("-paid_at", "-id")


@admin.register(StarSubscription)
class StarSubscriptionAdmin(ExactIdSearchMixin, ReadOnlyAdminMixin, ModelAdmin):
    list_display = (
        "id",
        "created_at",
        "user_display",
        "plan",
        "status_badge",
        "price_display",
        "renewals",
        "period_end",
        "charge_display",
    )
    list_select_related = ("user", "plan")
    list_filter = (("status", ChoicesDropdownFilter), ("plan", RelatedDropdownFilter))
    list_filter_submit = True
    search_fields = ("invoice_payload", "charge_id", "last_charge_id", "user__username")
    exact_id_search_fields = ("pk", "user__telegram_id")
    ordering = ("-created_at",)
    show_full_result_count = False
    inlines = (SubscriptionPaymentInline,)

    @display(description=_("Status"), ordering="status", label=SUBSCRIPTION_LABELS)
    def status_badge(self, obj: StarSubscription) -> tuple[str, str]:
        return obj.status, obj.get_status_display()

    @display(description=_("User"), ordering="user_id")
    def user_display(self, obj: StarSubscription) -> str:
        return user_cell(obj.user)

    @display(description=_("Price a month"), ordering="price_stars")
    def price_display(self, obj: StarSubscription) -> str:
        return gettext("%(stars)s ⭐") % {"stars": obj.price_stars}

    @display(description=_("First charge ID"))
    def charge_display(self, obj: StarSubscription) -> str:
        return shortened(obj.charge_id, CHARGE_ID_CHARS)
