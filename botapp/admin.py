"""The operator's admin (django-unfold).

Money is never edited in a form here. Balances change only through the services:
`BalanceService.admin_adjust` (the "grant or take tokens" action, with a reason and an idempotency
key per submitted form) and `GenerationService.admin_refund` (the "refund" action). The ledger
(`Transaction`), balances, payments, generation requests and promocode activations are read-only:
no add, no change, no delete, not even through a bulk action.
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterable, Sequence
from datetime import timedelta
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, IntegerField, Model, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from unfold.admin import ModelAdmin, StackedInline, TabularInline
from unfold.contrib.filters.admin import (
    ChoicesDropdownFilter,
    FieldTextFilter,
    RangeDateTimeFilter,
    RelatedDropdownFilter,
)
from unfold.decorators import action, display
from unfold.widgets import UnfoldAdminDecimalFieldWidget, UnfoldAdminSelectWidget, UnfoldAdminTextInputWidget

from botapp.models import (
    AIModel,
    GenRequest,
    Level,
    Payment,
    Promocode,
    PromocodeActivation,
    TgUser,
    TopUpPackage,
    Transaction,
    UserBalance,
    UserSettings,
)
from botapp.redaction import redact
from botapp.services.balance import BalanceService
from botapp.services.exceptions import DomainError
from botapp.services.generation import GenerationService
from botapp.services.promo import CODE_RE, normalize_code
from botapp.services.users import set_ban

MAX_ADJUST_USERS = 500  # one balance adjustment form applies to at most this many users
MAX_LISTED = 20  # names listed in one message before "and N more"

STATUS_LABELS = {
    # generation requests
    GenRequest.Status.CREATED: "info",
    GenRequest.Status.QUEUED: "info",
    GenRequest.Status.RUNNING: "warning",
    GenRequest.Status.SUCCEEDED: "success",
    GenRequest.Status.FAILED: "danger",
    GenRequest.Status.CANCELLED: "",
}
PAYMENT_LABELS = {
    Payment.Status.PENDING: "info",
    Payment.Status.SUCCEEDED: "success",
    Payment.Status.FAILED: "danger",
    Payment.Status.CANCELLED: "",
    Payment.Status.REFUNDED: "warning",
}
TX_LABELS = {
    Transaction.Kind.DEPOSIT: "success",
    Transaction.Kind.CHARGE: "info",
    Transaction.Kind.REFUND: "warning",
    Transaction.Kind.BONUS: "primary",
    Transaction.Kind.REFERRAL: "primary",
    Transaction.Kind.PROMO: "primary",
    Transaction.Kind.ADMIN_ADJUSTMENT: "danger",
    Transaction.Kind.PAYMENT_REFUND: "warning",
}


# --- helpers -------------------------------------------------------------------------------------
def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def _changelist_url(model: type[Model], **params: object) -> str:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def _signed(value: Decimal) -> str:
    return f"{value:+}"


def _csv_cell(value: object) -> object:
    """Neutralise spreadsheet formulas in user-supplied text (CSV injection); numbers stay as they are."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_response(filename: str, header: Iterable[str], rows: Iterable[Iterable[object]]) -> HttpResponse:
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}-{stamp}.csv"'
    response.write("\ufeff")  # lets spreadsheet programs detect UTF-8 (names are often Cyrillic)
    writer = csv.writer(response)
    writer.writerow(header)
    for row in rows:
        writer.writerow([_csv_cell(value) for value in row])
    return response


def _count_of(model: type[Model], fk: str) -> Coalesce:
    """A per-row COUNT as a correlated subquery: computed only for the rows of the current page."""
    counted = model.objects.filter(**{fk: OuterRef("pk")}).order_by().values(fk).annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


class ExactIdSearchMixin:
    """Search a number exactly (and with an index) in id columns, next to the text search_fields:
    `icontains` on a Telegram id would be a full scan that also matches unrelated ids."""

    exact_id_search_fields: tuple[str, ...] = ()

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip().lstrip("#@")
        if self.exact_id_search_fields and term.isdigit() and len(term) <= 18:
            exact = Q.create([(name, int(term)) for name in self.exact_id_search_fields], connector=Q.OR)
            results = results | queryset.filter(exact)
        return results, may_have_duplicates


class ReadOnlyAdminMixin:
    """View-only: no add, no change, no delete; the write paths refuse even if reached directly."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        raise PermissionDenied

    def delete_model(self, request, obj):
        raise PermissionDenied

    def delete_queryset(self, request, queryset):
        raise PermissionDenied


class ReadOnlyInline(TabularInline):
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ActivationActionsMixin:
    """activate / deactivate bulk actions for models with `is_active`."""

    @action(description="Activate selected", permissions=["change"], icon="toggle_on")
    def activate(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.filter(is_active=False).update(is_active=True)
        self.message_user(request, f"Activated {count} {self.opts.verbose_name_plural}.", messages.SUCCESS)

    @action(description="Deactivate selected", permissions=["change"], icon="toggle_off")
    def deactivate(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.filter(is_active=True).update(is_active=False)
        self.message_user(request, f"Deactivated {count} {self.opts.verbose_name_plural}.", messages.SUCCESS)


# --- inlines ---------------------------------------------------------------------------------------
class UserBalanceInline(StackedInline):
    model = UserBalance
    can_delete = False
    extra = 0
    max_num = 0
    fields = ("balance", "bonus_balance", "total_deposited", "total_spent", "total_refunded", "updated_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class UserSettingsInline(ReadOnlyInline):
    model = UserSettings
    show_change_link = True
    fields = (
        "language",
        "default_image_model",
        "default_video_model",
        "aspect_ratio",
        "video_duration",
        "video_resolution",
        "send_as_file",
        "notifications",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("default_image_model", "default_video_model")


class TransactionInline(ReadOnlyInline):
    model = Transaction
    fk_name = "user"
    verbose_name_plural = "Last transactions"
    per_page = 10
    fields = ("created_at", "kind", "bucket", "amount", "balance_after", "description", "operation_key")
    readonly_fields = fields
    ordering = ("-created_at", "-id")


class GenRequestInline(ReadOnlyInline):
    model = GenRequest
    verbose_name_plural = "Last generations"
    per_page = 10
    fields = ("created_at", "model", "status", "price", "error_code", "delivered_at", "refunded_at")
    readonly_fields = fields
    ordering = ("-created_at", "-id")


class LinkedTransactionInline(ReadOnlyInline):
    """The ledger rows that belong to one payment / generation / promocode."""

    model = Transaction
    verbose_name_plural = "Ledger rows"
    fields = ("created_at", "user", "kind", "bucket", "amount", "balance_after", "description")
    readonly_fields = fields
    ordering = ("-created_at", "-id")
    per_page = 20

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")


class PaymentTransactionInline(LinkedTransactionInline):
    fk_name = "payment"


class GenRequestTransactionInline(LinkedTransactionInline):
    fk_name = "gen_request"


class PromocodeActivationInline(ReadOnlyInline):
    model = PromocodeActivation
    fields = ("created_at", "user", "uses", "consumed_by", "consumed_at")
    readonly_fields = fields
    ordering = ("-created_at",)
    per_page = 20

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user", "consumed_by")


# --- the balance adjustment form -----------------------------------------------------------------
class CommaDecimalField(forms.DecimalField):
    """A decimal that accepts "2,50" as well as "2.50" whatever the admin's language (a comma is
    never read as a thousands separator: "2,25" must not become 225 tokens)."""

    def to_python(self, value):
        if isinstance(value, str):
            value = value.strip().replace(" ", "").replace("\u00a0", "").replace(",", ".")
        return super().to_python(value)


class BalanceAdjustmentForm(forms.Form):
    amount = CommaDecimalField(
        max_digits=12,
        decimal_places=2,
        widget=UnfoldAdminDecimalFieldWidget,
        help_text="Positive grants, negative takes (e.g. 10 or -2.50). Applied to each selected user.",
    )
    bucket = forms.ChoiceField(
        choices=Transaction.Bucket.choices,
        initial=Transaction.Bucket.MAIN,
        widget=UnfoldAdminSelectWidget,
        help_text="Main: purchased tokens. Bonus: bonus tokens (spent first).",
    )
    reason = forms.CharField(
        max_length=200,
        widget=UnfoldAdminTextInputWidget,
        help_text="Written to the ledger with your login, e.g. “compensation for ticket 123”.",
    )
    # One id per rendered form: the ledger key of each user is admin:<operation_id>:<user id>, so
    # submitting the same form twice (a double click, a browser retry) credits once.
    operation_id = forms.UUIDField(widget=forms.HiddenInput)

    def clean_amount(self) -> Decimal:
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise ValidationError("The amount must not be zero.")
        return amount

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise ValidationError("A reason is required.")
        return reason


# --- users ---------------------------------------------------------------------------------------
@admin.register(TgUser)
class TgUserAdmin(ExactIdSearchMixin, ModelAdmin):
    list_display = (
        "telegram_id",
        "username_display",
        "full_name",
        "balance_display",
        "level",
        "generations",
        "created_at",
        "last_seen_at",
        "state",
    )
    list_display_links = ("telegram_id", "username_display")
    list_filter = (
        "is_banned",
        "bot_blocked",
        "is_premium",
        ("language_code", FieldTextFilter),
        "level",
        ("created_at", RangeDateTimeFilter),
        ("last_seen_at", RangeDateTimeFilter),
    )
    list_filter_submit = True
    search_fields = ("username", "first_name", "last_name", "referral_code")
    exact_id_search_fields = ("telegram_id", "pk")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    list_per_page = 50
    show_full_result_count = False
    inlines = (UserBalanceInline, UserSettingsInline, TransactionInline, GenRequestInline)
    actions = ("adjust_balance", "ban", "unban", "export_csv")
    fieldsets = (
        (None, {"fields": ("telegram_id", "username", "first_name", "last_name", "language_code", "is_premium")}),
        ("Moderation", {"fields": ("is_banned", "ban_reason", "bot_blocked")}),
        ("Loyalty", {"fields": ("level", "xp", "referral_code", "referred_by", "referrals_count")}),
        ("Activity", {"fields": ("created_at", "last_seen_at", "links")}),
    )
    # Identity comes from Telegram; level/XP and referrals from the services. Only moderation is edited.
    readonly_fields = (
        "telegram_id",
        "username",
        "first_name",
        "last_name",
        "language_code",
        "is_premium",
        "bot_blocked",
        "level",
        "xp",
        "referral_code",
        "referred_by",
        "referrals_count",
        "created_at",
        "last_seen_at",
        "links",
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("balance")
            .annotate(gen_count=_count_of(GenRequest, "user"), ref_count=_count_of(TgUser, "referred_by"))
        )

    def has_add_permission(self, request, obj=None):
        return False  # users come from Telegram

    def has_delete_permission(self, request, obj=None):
        return False  # ban instead; the ledger protects users with history anyway

    def save_model(self, request, obj, form, change):
        if not obj.is_banned:
            obj.ban_reason = ""
        super().save_model(request, obj, form, change)

    def has_adjust_balance_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("botapp.change_userbalance")

    # -- columns --
    @display(description="Username", ordering="username")
    def username_display(self, obj: TgUser) -> str:
        return f"@{obj.username}" if obj.username else "-"

    @display(description="Name")
    def full_name(self, obj: TgUser) -> str:
        return obj.full_name or "-"

    @display(description="Balance + bonus", ordering="balance__balance")
    def balance_display(self, obj: TgUser) -> str:
        balance = getattr(obj, "balance", None)
        if balance is None:
            return "-"
        return f"{balance.balance} + {balance.bonus_balance}"

    @display(description="Generations", ordering="gen_count")
    def generations(self, obj: TgUser) -> int:
        return obj.gen_count

    @display(
        description="State",
        label={"banned": "danger", "blocked the bot": "warning", "active": "success"},
    )
    def state(self, obj: TgUser) -> str:
        if obj.is_banned:
            return "banned"
        if obj.bot_blocked:
            return "blocked the bot"
        return "active"

    @display(description="Referrals")
    def referrals_count(self, obj: TgUser) -> int:
        return obj.ref_count

    @display(description="Related")
    def links(self, obj: TgUser) -> str:
        if obj.pk is None:
            return "-"
        return format_html(
            '<a href="{}">Transactions</a> · <a href="{}">Generations</a> · <a href="{}">Payments</a>',
            _changelist_url(Transaction, user__id__exact=obj.pk),
            _changelist_url(GenRequest, user__id__exact=obj.pk),
            _changelist_url(Payment, user__id__exact=obj.pk),
        )

    # -- actions --
    @action(description="Grant or take tokens…", permissions=["adjust_balance"], icon="account_balance_wallet")
    def adjust_balance(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        users = list(queryset.select_related("balance").order_by("pk")[: MAX_ADJUST_USERS + 1])
        if len(users) > MAX_ADJUST_USERS:
            self.message_user(
                request, f"Select at most {MAX_ADJUST_USERS} users for one balance adjustment.", messages.ERROR
            )
            return None
        if "apply" in request.POST:
            form = BalanceAdjustmentForm(request.POST)
            if form.is_valid():
                self._apply_adjustment(request, users, **form.cleaned_data)
                return None
        else:
            form = BalanceAdjustmentForm(initial={"operation_id": uuid.uuid4(), "bucket": Transaction.Bucket.MAIN})
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request,
            "admin/botapp/tguser/adjust_balance.html",
            {
                **self.admin_site.each_context(request),
                "title": "Grant or take tokens",
                "subtitle": None,
                "opts": self.opts,
                "media": self.media + form.media,
                "form": form,
                "users": users,
                "action_name": "adjust_balance",
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
                "changelist_url": reverse("admin:botapp_tguser_changelist"),
            },
        )

    def _apply_adjustment(
        self,
        request: HttpRequest,
        users: list[TgUser],
        *,
        amount: Decimal,
        bucket: str,
        reason: str,
        operation_id: uuid.UUID,
    ) -> None:
        done: list[str] = []
        replayed: list[str] = []
        failed: list[str] = []
        ledger_reason = f"{reason} (by {request.user.get_username()})"
        for user in users:
            try:
                result = BalanceService.admin_adjust(
                    user_id=user.pk,
                    amount=amount,
                    reason=ledger_reason,
                    key=f"admin:{operation_id}:{user.pk}",
                    bucket=bucket,
                )
            except DomainError as exc:
                failed.append(f"{user}: {exc.message}")
                continue
            if result.replayed:
                replayed.append(str(user))
                continue
            done.append(f"{user} → {result.balance} + {result.bonus_balance} bonus")
            self.log_change(request, user, f"Balance adjusted by {_signed(amount)} ({bucket}): {reason}")
        verb = "Granted" if amount > 0 else "Took"
        if done:
            self.message_user(request, f"{verb} {abs(amount)} {bucket} tokens: {_listing(done)}.", messages.SUCCESS)
        if replayed:
            self.message_user(
                request,
                f"This form was already applied, nothing changed for: {_listing(replayed)}.",
                messages.WARNING,
            )
        for line in failed[:MAX_LISTED]:
            self.message_user(request, f"Not applied to {line}", messages.ERROR)
        if len(failed) > MAX_LISTED:
            self.message_user(request, f"… and {len(failed) - MAX_LISTED} more users failed.", messages.ERROR)

    @action(description="Ban selected users", permissions=["change"], icon="block")
    def ban(self, request: HttpRequest, queryset: QuerySet) -> None:
        users = list(queryset.filter(is_banned=False))
        reason = f"banned by {request.user.get_username()}"
        for user in users:
            set_ban(user_id=user.pk, banned=True, reason=reason)
            self.log_change(request, user, "Banned")
        self.message_user(request, f"Banned {len(users)} users.", messages.SUCCESS)

    @action(description="Unban selected users", permissions=["change"], icon="lock_open")
    def unban(self, request: HttpRequest, queryset: QuerySet) -> None:
        users = list(queryset.filter(is_banned=True))
        for user in users:
            set_ban(user_id=user.pk, banned=False)
            self.log_change(request, user, "Unbanned")
        self.message_user(request, f"Unbanned {len(users)} users.", messages.SUCCESS)

    @action(description="Export selected to CSV", permissions=["view"], icon="download")
    def export_csv(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        fields = (
            "pk",
            "telegram_id",
            "username",
            "first_name",
            "last_name",
            "language_code",
            "balance__balance",
            "balance__bonus_balance",
            "balance__total_deposited",
            "balance__total_spent",
            "balance__total_refunded",
            "level",
            "xp",
            "is_banned",
            "bot_blocked",
            "referral_code",
            "referred_by__telegram_id",
            "created_at",
            "last_seen_at",
        )
        header = [name.replace("balance__", "").replace("__", "_") for name in fields]
        header[0] = "id"
        rows = queryset.order_by("pk").values_list(*fields).iterator(chunk_size=2000)
        return csv_response("users", header, rows)


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
    list_filter = (("updated_at", RangeDateTimeFilter),)
    list_filter_submit = True
    ordering = ("-updated_at",)
    show_full_result_count = False
    actions = None

    @display(description="Total")
    def total(self, obj: UserBalance) -> Decimal:
        return obj.total


@admin.register(UserSettings)
class UserSettingsAdmin(ExactIdSearchMixin, ModelAdmin):
    list_display = (
        "user",
        "language",
        "default_image_model",
        "default_video_model",
        "aspect_ratio",
        "video_duration",
        "video_resolution",
        "send_as_file",
        "notifications",
        "updated_at",
    )
    list_select_related = ("user", "default_image_model", "default_video_model")
    list_filter = ("language", "send_as_file", "notifications")
    search_fields = ("user__username",)
    exact_id_search_fields = ("user__telegram_id", "user_id")
    readonly_fields = ("user", "updated_at")
    show_full_result_count = False

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        kinds = {"default_image_model": AIModel.Kind.IMAGE, "default_video_model": AIModel.Kind.VIDEO}
        if db_field.name in kinds:
            kwargs["queryset"] = AIModel.objects.filter(kind=kinds[db_field.name])
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_add_permission(self, request, obj=None):
        return False  # created with the user

    def has_delete_permission(self, request, obj=None):
        return False


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
            raise ValidationError('Capabilities must be a JSON object, e.g. {"max_input_images": 3}.')
        return value

    def clean_default_params(self):
        value = self.cleaned_data.get("default_params")
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValidationError("Default parameters must be a JSON object.")
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
        ("Provider", {"fields": ("provider", "provider_model_id", "api_backend")}),
        (
            "Provider cost (the dashboard's margin)",
            {
                "fields": ("cost_per_image_usd", "cost_per_video_second_usd"),
                "description": "What Google charges per image or per second of video, in US dollars; "
                "converted to roubles at USD_RUB_RATE.",
            },
        ),
        ("Capabilities", {"fields": ("capabilities", "default_params")}),
        ("Descriptions", {"fields": ("description", "description_en")}),
        ("Timestamps", {"fields": ("created_at", "updated_at")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(req_count=_count_of(GenRequest, "ai_model"))

    @display(description="Model", ordering="name")
    def display_name(self, obj: AIModel) -> str:
        return str(obj)

    @display(description="Requests", ordering="req_count")
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

    @display(description="Users", ordering="user_count")
    def users_count(self, obj: Level) -> int:
        return obj.user_count


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

    @display(description="Package", ordering="name")
    def display_name(self, obj: TopUpPackage) -> str:
        return obj.name or str(obj)

    @display(description="⭐ per token")
    def stars_per_token(self, obj: TopUpPackage) -> str:
        return f"{Decimal(obj.price_stars) / obj.tokens:.2f}" if obj.tokens else "-"


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
            raise ValidationError("2–64 characters: Latin letters, digits, “_” and “-” (case does not matter).")
        return code

    def clean(self):
        data = super().clean()
        kind, value = data.get("kind"), data.get("value")
        if kind == Promocode.Kind.TOPUP_DISCOUNT and value is not None and value >= 100:
            self.add_error("value", "A discount is a percentage below 100.")
        start, end = data.get("valid_from"), data.get("valid_until")
        if start and end and end <= start:
            self.add_error("valid_until", "Must be after “valid from”.")
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
        ("valid_until", RangeDateTimeFilter),
    )
    list_filter_submit = True
    search_fields = ("code", "description")
    readonly_fields = ("uses_count", "created_at")
    ordering = ("-created_at",)
    actions = ("activate", "deactivate")
    inlines = (PromocodeActivationInline,)
    fieldsets = (
        (None, {"fields": ("code", "kind", "value", "description", "is_active")}),
        ("Limits", {"fields": ("max_uses", "uses_count", "per_user_limit", "first_topup_only")}),
        ("Validity", {"fields": ("valid_from", "valid_until")}),
        ("Timestamps", {"fields": ("created_at",)}),
    )

    @display(description="Uses", ordering="uses_count")
    def uses(self, obj: Promocode) -> str:
        return f"{obj.uses_count} / {obj.max_uses if obj.max_uses is not None else '∞'}"

    @display(
        description="State",
        label={"active": "success", "inactive": "", "expired": "danger", "used up": "warning", "scheduled": "info"},
    )
    def state(self, obj: Promocode) -> str:
        now = timezone.now()
        if not obj.is_active:
            return "inactive"
        if obj.valid_until and obj.valid_until <= now:
            return "expired"
        if obj.max_uses is not None and obj.uses_count >= obj.max_uses:
            return "used up"
        if obj.valid_from and obj.valid_from > now:
            return "scheduled"
        return "active"


@admin.register(PromocodeActivation)
class PromocodeActivationAdmin(ExactIdSearchMixin, ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("promocode", "user", "uses", "created_at", "consumed_by", "consumed_at")
    list_select_related = ("promocode", "user", "consumed_by")
    list_filter = (("promocode", RelatedDropdownFilter), ("created_at", RangeDateTimeFilter))
    list_filter_submit = True
    search_fields = ("promocode__code", "user__username")
    exact_id_search_fields = ("user__telegram_id",)
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    show_full_result_count = False
    actions = None


# --- money and generations -----------------------------------------------------------------------
class RefundedFilter(admin.SimpleListFilter):
    title = "refunded"
    parameter_name = "refunded"

    def lookups(self, request, model_admin):
        return (("yes", "Yes"), ("no", "No"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(refunded_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(refunded_at__isnull=True)
        return queryset


@admin.register(GenRequest)
class GenRequestAdmin(ExactIdSearchMixin, ReadOnlyAdminMixin, ModelAdmin):
    """Read-only: a request moves only through GenerationService; the operator can refund it."""

    list_display = (
        "id",
        "user",
        "model_display",
        "status_badge",
        "price",
        "created_at",
        "duration",
        "error_code",
        "refunded",
    )
    list_select_related = ("user", "ai_model")
    list_filter = (
        ("status", ChoicesDropdownFilter),
        "kind",
        ("ai_model", RelatedDropdownFilter),
        RefundedFilter,
        ("error_code", FieldTextFilter),
        ("created_at", RangeDateTimeFilter),
    )
    list_filter_submit = True
    search_fields = ("prompt", "provider_operation_id", "error_code", "user__username")
    exact_id_search_fields = ("pk", "user__telegram_id")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    show_full_result_count = False
    actions = ("refund", "export_csv")
    inlines = (GenRequestTransactionInline,)
    fieldsets = (
        (None, {"fields": ("user", "ai_model", "model", "kind", "status", "price", "attempts")}),
        ("Request", {"fields": ("prompt", "negative_prompt", "params", "input_images", "idempotency_key")}),
        ("Result", {"fields": ("results", "error_code", "error_text", "provider_operation_id")}),
        ("Telegram", {"fields": ("chat_id", "status_message_id")}),
        (
            "Timeline",
            {
                "fields": (
                    "created_at",
                    "queued_at",
                    "started_at",
                    "finished_at",
                    "deadline_at",
                    "next_poll_at",
                    "delivered_at",
                    "refunded_at",
                )
            },
        ),
    )

    def has_refund_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("botapp.change_genrequest")

    @display(description="Model", ordering="model")
    def model_display(self, obj: GenRequest) -> str:
        return str(obj.ai_model) if obj.ai_model_id else obj.model

    @display(description="Status", ordering="status", label=STATUS_LABELS)
    def status_badge(self, obj: GenRequest) -> tuple[str, str]:
        return obj.status, obj.get_status_display()

    @display(description="Duration")
    def duration(self, obj: GenRequest) -> str:
        start = obj.started_at or obj.created_at
        if obj.finished_at is None or start is None:
            return "-"
        return _format_duration(obj.finished_at - start)

    @display(description="Refunded", boolean=True, ordering="refunded_at")
    def refunded(self, obj: GenRequest) -> bool:
        return obj.refunded_at is not None

    @display(description="Error message")
    def error_text(self, obj: GenRequest) -> str:
        """Redacted again on display: a row stored before redaction existed may hold a secret."""
        return redact(obj.error_message) or "-"

    @action(description="Refund selected generations", permissions=["refund"], icon="undo")
    def refund(self, request: HttpRequest, queryset: QuerySet) -> None:
        reason = f"refunded by {request.user.get_username()} in the admin"
        refunded: list[str] = []
        already: list[str] = []
        free: list[str] = []
        refused: list[str] = []
        for gen in queryset.order_by("pk"):
            label = f"#{gen.pk}"
            # The service's result cannot tell "refunded now" from "refunded before" (failing an
            # in-flight request refunds it inside), so look at the ledger first.
            had_refund = Transaction.objects.filter(operation_key=gen.refund_key).exists()
            try:
                result = GenerationService.admin_refund(request_id=gen.pk, reason=reason)
            except DomainError as exc:
                refused.append(f"{label}: {exc.message}")
                continue
            if result is None:
                free.append(label)
            elif had_refund:
                already.append(label)
            else:
                refunded.append(f"{label} ({result.amount} tokens)")
                self.log_change(request, gen, f"Refunded {result.amount} tokens: {reason}")
        if refunded:
            self.message_user(request, f"Refunded {_listing(refunded)}.", messages.SUCCESS)
        if already:
            self.message_user(request, f"Already refunded, nothing changed: {_listing(already)}.", messages.WARNING)
        if free:
            self.message_user(request, f"Nothing was charged for {_listing(free)}.", messages.WARNING)
        for line in refused[:MAX_LISTED]:
            self.message_user(request, f"Refund refused for {line}", messages.ERROR)
        if len(refused) > MAX_LISTED:
            self.message_user(request, f"… and {len(refused) - MAX_LISTED} more refused.", messages.ERROR)

    @action(description="Export selected to CSV", permissions=["view"], icon="download")
    def export_csv(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        fields = (
            "pk",
            "created_at",
            "user__telegram_id",
            "model",
            "kind",
            "status",
            "price",
            "error_code",
            "started_at",
            "finished_at",
            "delivered_at",
            "refunded_at",
            "prompt",
        )
        header = ["id", *(name.replace("__", "_") for name in fields[1:])]
        rows = queryset.order_by("pk").values_list(*fields).iterator(chunk_size=2000)
        return csv_response("generations", header, rows)


def _format_duration(delta: timedelta) -> str:
    seconds = max(delta.total_seconds(), 0)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes} min {seconds} s"


@admin.register(Payment)
class PaymentAdmin(ExactIdSearchMixin, ReadOnlyAdminMixin, ModelAdmin):
    """Read-only: payments are created and credited by PaymentService (exactly once per charge id)."""

    list_display = (
        "id",
        "created_at",
        "user",
        "provider",
        "status_badge",
        "amount_display",
        "tokens",
        "bonus_tokens",
        "promocode",
        "provider_charge_id",
        "paid_at",
    )
    list_select_related = ("user", "promocode")
    list_filter = (
        "provider",
        ("status", ChoicesDropdownFilter),
        "currency",
        ("created_at", RangeDateTimeFilter),
        ("paid_at", RangeDateTimeFilter),
    )
    list_filter_submit = True
    search_fields = ("provider_charge_id", "invoice_payload", "user__username", "promocode__code")
    exact_id_search_fields = ("pk", "user__telegram_id")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    show_full_result_count = False
    actions = ("export_csv",)
    inlines = (PaymentTransactionInline,)

    @display(description="Status", ordering="status", label=PAYMENT_LABELS)
    def status_badge(self, obj: Payment) -> tuple[str, str]:
        return obj.status, obj.get_status_display()

    @display(description="Amount", ordering="amount")
    def amount_display(self, obj: Payment) -> str:
        return f"{obj.amount} {obj.currency}"

    @action(description="Export selected to CSV", permissions=["view"], icon="download")
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

    list_display = (
        "id",
        "created_at",
        "user",
        "kind_badge",
        "bucket",
        "amount_display",
        "balance_after",
        "gen_request_link",
        "payment_link",
        "promocode",
        "description",
    )
    list_select_related = ("user", "promocode")
    list_filter = (
        ("kind", ChoicesDropdownFilter),
        "bucket",
        ("created_at", RangeDateTimeFilter),
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

    @display(description="Kind", ordering="kind", label=TX_LABELS)
    def kind_badge(self, obj: Transaction) -> tuple[str, str]:
        return obj.kind, obj.get_kind_display()

    @display(description="Amount", ordering="amount")
    def amount_display(self, obj: Transaction) -> str:
        return _signed(obj.amount)

    @display(description="Generation")
    def gen_request_link(self, obj: Transaction) -> str:
        if not obj.gen_request_id:
            return "-"
        url = reverse("admin:botapp_genrequest_change", args=(obj.gen_request_id,))
        return format_html('<a href="{}">#{}</a>', url, obj.gen_request_id)

    @display(description="Payment")
    def payment_link(self, obj: Transaction) -> str:
        if not obj.payment_id:
            return "-"
        url = reverse("admin:botapp_payment_change", args=(obj.payment_id,))
        return format_html('<a href="{}">#{}</a>', url, obj.payment_id)

    @action(description="Export selected to CSV", permissions=["view"], icon="download")
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


# --- broadcasts: botapp/admin_broadcasts.py (registered on import) -------------------------------
from botapp import admin_broadcasts  # noqa: E402, F401
