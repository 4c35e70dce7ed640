"""Money: balances, the ledger, payments, top-up packages, promocodes and their activations."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import (
    ChoicesDropdownFilter,
    RangeDateTimeFilter,
    RelatedDropdownFilter,
)
from unfold.decorators import action, display

from botapp.admin.base import (
    DATE_ACTIVATED,
    DATE_CREATED,
    DATE_EXPIRES,
    DATE_PAID,
    DATE_UPDATED,
    PAYMENT_LABELS,
    TX_LABELS,
    ActivationActionsMixin,
    ExactIdSearchMixin,
    LinkedTransactionInline,
    ReadOnlyAdminMixin,
    ReadOnlyInline,
    csv_response,
    shortened,
    signed,
    titled,
    user_cell,
)
from botapp.admin.refunds import StarsRefundMixin
from botapp.models import (
    Payment,
    Promocode,
    PromocodeActivation,
    TopUpPackage,
    Transaction,
    UserBalance,
)
from botapp.services.promo import CODE_RE, normalize_code

CHARGE_ID_CHARS = 14  # a provider charge id in the payments list (whole in the tooltip)
DESCRIPTION_CHARS = 48  # a ledger description in the list (whole in the tooltip)
CODE_CHARS = 14  # a promocode in the lists (whole in the tooltip)
PROMO_STATES = {
    "active": _("active"),
    "inactive": _("inactive"),
    "expired": _("expired"),
    "used up": _("used up"),
    "scheduled": _("scheduled"),
}
PROMO_STATE_LABELS = {
    "active": "success",
    "inactive": "",
    "expired": "danger",
    "used up": "warning",
    "scheduled": "info",
}


@admin.register(UserBalance)
class UserBalanceAdmin(ExactIdSearchMixin, ReadOnlyAdminMixin, ModelAdmin):
    """Balances are a cache of the ledger: shown, never edited (use "Grant or take tokens" on users)."""

    list_display = (
        "user",
        "balance",
        "bonus_balance",
        "total",
        "total_deposited",
        "total_spent",
        "total_refunded",
        "updated_at",
    )
    list_select_related = ("user",)
    search_fields = ("user__username",)
    exact_id_search_fields = ("user__telegram_id", "user_id")
    list_filter = (("updated_at", titled(RangeDateTimeFilter, DATE_UPDATED)),)
    list_filter_submit = True
    ordering = ("-updated_at",)
    show_full_result_count = False
    actions = None

    @display(description=_("Total"))
    def total(self, obj: UserBalance) -> Decimal:
        return obj.total


class PaymentTransactionInline(LinkedTransactionInline):
    fk_name = "payment"


@admin.register(Payment)
class PaymentAdmin(StarsRefundMixin, ExactIdSearchMixin, ReadOnlyAdminMixin, ModelAdmin):
    """Read-only: payments are created and credited by PaymentService (exactly once per charge id); a Stars
    payment is refunded by "Refund Stars payment…", a card payment by "Refund card payment…" (botapp/admin/refunds.py,
    botapp.services.refunds and card_refunds)."""

    # Fits 1400 px without scrolling (tests/e2e/test_admin_browser.py): tokens and bonus in one column,
    # the user, the promocode and the charge id shortened (whole in their tooltips and on the payment's page).
    list_display = (
        "id",
        "created_at",
        "user_display",
        "provider",
        "status_badge",
        "amount_display",
        "tokens_display",
        "promocode_display",
        "charge_id",
        "paid_at",
    )
    list_select_related = ("user", "promocode")
    list_filter = (
        "provider",
        ("status", ChoicesDropdownFilter),
        "currency",
        ("created_at", titled(RangeDateTimeFilter, DATE_CREATED)),
        ("paid_at", titled(RangeDateTimeFilter, DATE_PAID)),
    )
    list_filter_submit = True
    search_fields = ("provider_charge_id", "invoice_payload", "user__username", "promocode__code")
    exact_id_search_fields = ("pk", "user__telegram_id")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    show_full_result_count = False
    actions = ("refund_stars", "refund_card", "export_csv")
    actions_detail = ("refund_stars_detail", "refund_card_detail")
    inlines = (PaymentTransactionInline,)

    def has_refund_permission(self, request: HttpRequest, obj=None) -> bool:
        """Refunding shows the payment and its user: it needs the view permission too, not only
        `botapp.change_payment` (the money rule, botapp/admin/dashboard.py)."""
        return self.has_view_permission(request) and super().has_refund_permission(request, obj)

    @display(description=_("Status"), ordering="status", label=PAYMENT_LABELS)
    def status_badge(self, obj: Payment) -> tuple[str, str]:
        return obj.status, obj.get_status_display()

    @display(description=_("Amount"), ordering="amount")
    def amount_display(self, obj: Payment) -> str:
        return f"{number_format(obj.amount)} {obj.currency}"

    @display(description=_("Tokens + bonus"), ordering="tokens")
    def tokens_display(self, obj: Payment) -> str:
        tokens = number_format(obj.tokens)
        return f"{tokens} + {number_format(obj.bonus_tokens)}" if obj.bonus_tokens else tokens

    @display(description=_("User"), ordering="user_id")
    def user_display(self, obj: Payment) -> str:
        return user_cell(obj.user)

    @display(description=_("Promocode"), ordering="promocode__code")
    def promocode_display(self, obj: Payment) -> str:
        return shortened(obj.promocode.code, CODE_CHARS) if obj.promocode_id else "-"

    @display(description=_("Charge ID"))
    def charge_id(self, obj: Payment) -> str:
        return shortened(obj.provider_charge_id, CHARGE_ID_CHARS)

    @action(description=_("Export selected to CSV"), permissions=["view"], icon="download")
    def export_csv(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        fields = (
            "pk",
            "created_at",
            "paid_at",
            "refunded_at",
            "user__telegram_id",
            "user__username",
            "provider",
            "status",
            "amount",
            "currency",
            "tokens",
            "bonus_tokens",
            "package_id",
            "promocode__code",
            "provider_charge_id",
            "invoice_payload",
        )
        header = ["id", *(name.replace("__", "_") for name in fields[1:])]
        rows = queryset.order_by("pk").values_list(*fields).iterator(chunk_size=2000)
        return csv_response("payments", header, rows)


@admin.register(Transaction)
class TransactionAdmin(ExactIdSearchMixin, ReadOnlyAdminMixin, ModelAdmin):
    """The append-only ledger: strictly read-only. The only action is an export."""

    # Fits 1400 px without scrolling (tests/e2e/test_admin_browser.py): the bucket under the amount, the
    # generation, payment and promocode in one "Linked to" column, the user and the description shortened
    # (whole in their tooltips).
    list_display = (
        "id",
        "created_at",
        "user_display",
        "kind_badge",
        "amount_display",
        "balance_after",
        "linked",
        "short_description",
    )
    list_select_related = ("user", "promocode")
    list_filter = (
        ("kind", ChoicesDropdownFilter),
        "bucket",
        ("created_at", titled(RangeDateTimeFilter, DATE_CREATED)),
    )
    list_filter_submit = True
    search_fields = (
        "user__username",
        "operation_key",
        "idempotency_key",
        "description",
        "payment__provider_charge_id",
        "promocode__code",
    )
    exact_id_search_fields = ("pk", "user__telegram_id", "gen_request_id", "payment_id")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    show_full_result_count = False
    actions = ("export_csv",)

    @display(description=_("Kind"), ordering="kind", label=TX_LABELS)
    def kind_badge(self, obj: Transaction) -> tuple[str, str]:
        return obj.kind, obj.get_kind_display()

    @display(description=_("Amount"), ordering="amount")
    def amount_display(self, obj: Transaction) -> str:
        if obj.bucket == Transaction.Bucket.MAIN:
            return signed(obj.amount)
        return format_html(
            '{} <span class="text-base-500 text-xs">{}</span>', signed(obj.amount), obj.get_bucket_display().lower()
        )

    @display(description=_("User"), ordering="user_id")
    def user_display(self, obj: Transaction) -> str:
        return user_cell(obj.user)

    @display(description=_("Linked to"))
    def linked(self, obj: Transaction) -> str:
        links = []
        if obj.gen_request_id:
            url = reverse("admin:botapp_genrequest_change", args=(obj.gen_request_id,))
            links.append((url, gettext("generation #%(id)s") % {"id": obj.gen_request_id}))
        if obj.payment_id:
            url = reverse("admin:botapp_payment_change", args=(obj.payment_id,))
            links.append((url, gettext("payment #%(id)s") % {"id": obj.payment_id}))
        if obj.promocode_id:
            url = reverse("admin:botapp_promocode_change", args=(obj.promocode_id,))
            links.append((url, shortened(obj.promocode.code, CODE_CHARS)))
        if not links:
            return "-"
        return format_html_join(mark_safe("<br>"), '<a href="{}">{}</a>', links)

    @display(description=_("Description"), ordering="description")
    def short_description(self, obj: Transaction) -> str:
        return shortened(obj.description, DESCRIPTION_CHARS)

    @action(description=_("Export selected to CSV"), permissions=["view"], icon="download")
    def export_csv(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        fields = (
            "pk",
            "created_at",
            "user_id",
            "user__telegram_id",
            "kind",
            "bucket",
            "amount",
            "balance_after",
            "gen_request_id",
            "payment_id",
            "promocode__code",
            "operation_key",
            "description",
        )
        header = ["id", *(name.replace("__", "_") for name in fields[1:])]
        rows = queryset.order_by("pk").values_list(*fields).iterator(chunk_size=2000)
        return csv_response("transactions", header, rows)


@admin.register(TopUpPackage)
class TopUpPackageAdmin(ActivationActionsMixin, ModelAdmin):
    list_display = (
        "display_name",
        "tokens",
        "price_stars",
        "stars_per_token",
        "price_rub",
        "price_usd",
        "bonus_percent",
        "is_active",
        "sort_order",
    )
    list_display_links = ("display_name",)
    list_editable = ("price_stars", "bonus_percent", "is_active", "sort_order")
    list_filter = ("is_active",)
    search_fields = ("name",)
    ordering = ("sort_order", "tokens")
    actions = ("activate", "deactivate")

    @display(description=_("Package"), ordering="name")
    def display_name(self, obj: TopUpPackage) -> str:
        return obj.name or gettext("%(tokens)s tokens") % {"tokens": obj.tokens}

    @display(description=_("⭐ per token"))
    def stars_per_token(self, obj: TopUpPackage) -> str:
        return f"{Decimal(obj.price_stars) / obj.tokens:.2f}" if obj.tokens else "-"


class PromocodeActivationInline(ReadOnlyInline):
    model = PromocodeActivation
    fields = ("created_at", "user", "uses", "consumed_by", "consumed_at")
    readonly_fields = fields
    ordering = ("-created_at",)
    per_page = 20

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user", "consumed_by")


# --- promocodes ----------------------------------------------------------------------------------
class PromocodeForm(forms.ModelForm):
    class Meta:
        model = Promocode
        fields = (
            "code",
            "kind",
            "value",
            "description",
            "is_active",
            "max_uses",
            "per_user_limit",
            "first_topup_only",
            "valid_from",
            "valid_until",
        )

    def clean_code(self) -> str:
        code = normalize_code(self.cleaned_data["code"])
        if not CODE_RE.match(code):
            raise ValidationError(_("2–64 characters: Latin letters, digits, “_” and “-” (case does not matter)."))
        return code

    def clean(self):
        data = super().clean()
        kind, value = data.get("kind"), data.get("value")
        if kind == Promocode.Kind.TOPUP_DISCOUNT and value is not None and value >= 100:
            self.add_error("value", _("A discount is a percentage below 100."))
        start, end = data.get("valid_from"), data.get("valid_until")
        if start and end and end <= start:
            self.add_error("valid_until", _("Must be after “valid from”."))
        return data


@admin.register(Promocode)
class PromocodeAdmin(ActivationActionsMixin, ModelAdmin):
    form = PromocodeForm
    list_display = (
        "code",
        "kind",
        "value",
        "uses",
        "per_user_limit",
        "valid_from",
        "valid_until",
        "first_topup_only",
        "state",
        "created_at",
    )
    list_filter = (
        "kind",
        "is_active",
        "first_topup_only",
        ("valid_until", titled(RangeDateTimeFilter, DATE_EXPIRES)),
    )
    list_filter_submit = True
    search_fields = ("code", "description")
    readonly_fields = ("uses_count", "created_at")
    ordering = ("-created_at",)
    actions = ("activate", "deactivate")
    inlines = (PromocodeActivationInline,)
    fieldsets = (
        (None, {"fields": ("code", "kind", "value", "description", "is_active")}),
        (_("Limits"), {"fields": ("max_uses", "uses_count", "per_user_limit", "first_topup_only")}),
        (_("Validity"), {"fields": ("valid_from", "valid_until")}),
        (_("Timestamps"), {"fields": ("created_at",)}),
    )

    @display(description=_("Uses"), ordering="uses_count")
    def uses(self, obj: Promocode) -> str:
        return f"{obj.uses_count} / {obj.max_uses if obj.max_uses is not None else '∞'}"

    @display(description=_("State"), label=PROMO_STATE_LABELS)
    def state(self, obj: Promocode) -> tuple[str, str]:
        now = timezone.now()
        if not obj.is_active:
            key = "inactive"
        elif obj.valid_until and obj.valid_until <= now:
            key = "expired"
        elif obj.max_uses is not None and obj.uses_count >= obj.max_uses:
            key = "used up"
        elif obj.valid_from and obj.valid_from > now:
            key = "scheduled"
        else:
            key = "active"
        return key, PROMO_STATES[key]


@admin.register(PromocodeActivation)
class PromocodeActivationAdmin(ExactIdSearchMixin, ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("promocode", "user", "uses", "created_at", "consumed_by", "consumed_at")
    list_select_related = ("promocode", "user", "consumed_by")
    list_filter = (("promocode", RelatedDropdownFilter), ("created_at", titled(RangeDateTimeFilter, DATE_ACTIVATED)))
    list_filter_submit = True
    search_fields = ("promocode__code", "user__username")
    exact_id_search_fields = ("user__telegram_id",)
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    show_full_result_count = False
