"""Users and support: the users list (one search box for every key support is given, moderation, grant or
take tokens, message users, export), the user page's timeline, and the users' settings. The support tools
themselves live in `botapp.admin.support` (timeline, message form, the support messages log)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, StackedInline
from unfold.contrib.filters.admin import (
    FieldTextFilter,
    RangeDateTimeFilter,
)
from unfold.decorators import action, display
from unfold.widgets import UnfoldAdminDecimalFieldWidget, UnfoldAdminSelectWidget, UnfoldAdminTextInputWidget

from botapp.admin.base import (
    DATE_CREATED,
    DATE_SEEN,
    MAX_LISTED,
    ExactIdSearchMixin,
    ReadOnlyInline,
    changelist_url,
    count_of,
    csv_response,
    listing,
    signed,
    titled,
)
from botapp.admin.support import TIMELINE_LIMIT, can_send, message_users, timeline_table
from botapp.models import (
    AIModel,
    GenRequest,
    Payment,
    SupportMessage,
    TgUser,
    Transaction,
    UserBalance,
    UserSettings,
)
from botapp.selectors.payments import spent_refunds
from botapp.selectors.support import find_user_ids
from botapp.services.balance import BalanceService
from botapp.services.exceptions import DomainError
from botapp.services.support import MAX_RECIPIENTS
from botapp.services.users import set_ban

MAX_ADJUST_USERS = 500  # one balance adjustment form applies to at most this many users
BALANCE_COLUMNS = (
    "balance__balance",
    "balance__bonus_balance",
    "balance__total_deposited",
    "balance__total_spent",
    "balance__total_refunded",
)


def can_see_balances(request: HttpRequest) -> bool:
    return request.user.has_perm("botapp.view_userbalance")


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
    verbose_name_plural = _("Last transactions")
    per_page = 10
    fields = ("created_at", "kind", "bucket", "amount", "balance_after", "description", "operation_key")
    readonly_fields = fields
    ordering = ("-created_at", "-id")


class GenRequestInline(ReadOnlyInline):
    model = GenRequest
    verbose_name_plural = _("Last generations")
    per_page = 10
    fields = ("created_at", "model", "status", "price", "error_code", "delivered_at", "refunded_at")
    readonly_fields = fields
    ordering = ("-created_at", "-id")


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
        help_text=_("Positive grants, negative takes (e.g. 10 or -2.50). Applied to each selected user."),
    )
    bucket = forms.ChoiceField(
        choices=Transaction.Bucket.choices,
        initial=Transaction.Bucket.MAIN,
        widget=UnfoldAdminSelectWidget,
        help_text=_("Main: purchased tokens. Bonus: bonus tokens (spent first)."),
    )
    reason = forms.CharField(
        max_length=200,
        widget=UnfoldAdminTextInputWidget,
        help_text=_("Written to the ledger with your login, e.g. “compensation for ticket 123”."),
    )
    # One id per rendered form: the ledger key of each user is admin:<operation_id>:<user id>, so
    # submitting the same form twice (a double click, a browser retry) credits once.
    operation_id = forms.UUIDField(widget=forms.HiddenInput)

    def clean_amount(self) -> Decimal:
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise ValidationError(_("The amount must not be zero."))
        return amount

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise ValidationError(_("A reason is required."))
        return reason


# --- users ---------------------------------------------------------------------------------------
@admin.register(TgUser)
class TgUserAdmin(ModelAdmin):
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
        ("created_at", titled(RangeDateTimeFilter, DATE_CREATED)),
        ("last_seen_at", titled(RangeDateTimeFilter, DATE_SEEN)),
    )
    list_filter_submit = True
    # Names by a part (the text search); every id-like key exactly, by its index (get_search_results).
    search_fields = ("username", "first_name", "last_name")
    # The search box's placeholder (about 40 characters fit): Telegram id or user id, @username or a name,
    # #generation number, referral code, payment charge id or invoice payload.
    search_help_text = _("@username, id, #generation, code, charge id")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    list_per_page = 50
    show_full_result_count = False
    inlines = (UserBalanceInline, UserSettingsInline, TransactionInline, GenRequestInline)
    actions = ("adjust_balance", "message_selected", "ban", "unban", "export_csv")
    actions_detail = ("message_detail",)
    change_form_outer_after_template = "admin/botapp/tguser/timeline.html"
    fieldsets = (
        (None, {"fields": ("telegram_id", "username", "first_name", "last_name", "language_code", "is_premium")}),
        (_("Moderation"), {"fields": ("is_banned", "ban_reason", "bot_blocked", "spent_refunds")}),
        (_("Loyalty"), {"fields": ("level", "xp", "referral_code", "referred_by", "referrals_count")}),
        (_("Activity"), {"fields": ("created_at", "last_seen_at", "links")}),
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
        "spent_refunds",
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
            .annotate(gen_count=count_of(GenRequest, "user"), ref_count=count_of(TgUser, "referred_by"))
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

    def has_send_message_permission(self, request: HttpRequest, obj=None) -> bool:
        return can_send(request)

    # -- search: one box for every key support is given (botapp.selectors.support.find_user_ids) --
    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        term = search_term.strip()
        if not term:
            return super().get_search_results(request, queryset, search_term)
        found = find_user_ids(term)
        exact = queryset.filter(pk__in=found)
        if term.startswith("#") or term.isdigit():  # an id: exact keys only (no scan for digits in names)
            return exact, False
        if term.startswith("@"):  # a username: exactly, else a part of one
            name = term.lstrip("@")
            if found or not name:
                return (exact if name else queryset), False
            return queryset.filter(username__icontains=name), False
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        return (results | exact if found else results), may_have_duplicates

    # -- the user page: the timeline under the form (botapp.admin.support) --
    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        extra_context = dict(extra_context or {})
        try:
            user_id = int(unquote(object_id))
        except (TypeError, ValueError):
            user_id = None
        if user_id is not None:
            extra_context["timeline"] = timeline_table(request, user_id=user_id, limit=TIMELINE_LIMIT)
            extra_context["timeline_title"] = _(
                "Timeline: the latest payments, generations, ledger rows and support messages"
            )
        return super().change_view(request, object_id, form_url, extra_context)

    # -- columns --
    @display(description=_("Username"), ordering="username")
    def username_display(self, obj: TgUser) -> str:
        return f"@{obj.username}" if obj.username else "-"

    @display(description=_("Name"))
    def full_name(self, obj: TgUser) -> str:
        return obj.full_name or "-"

    # Money is shown only to staff who may see balances (view_userbalance) and the ledger (view_transaction).
    def get_list_display(self, request):
        shown = super().get_list_display(request)
        return shown if can_see_balances(request) else tuple(name for name in shown if name != "balance_display")

    def get_inlines(self, request, obj):
        hidden = set()
        if not can_see_balances(request):
            hidden.add(UserBalanceInline)
        if not request.user.has_perm("botapp.view_transaction"):
            hidden.add(TransactionInline)
        return [inline for inline in super().get_inlines(request, obj) if inline not in hidden]

    @display(description=_("Balance + bonus"), ordering="balance__balance")
    def balance_display(self, obj: TgUser) -> str:
        balance = getattr(obj, "balance", None)
        if balance is None:
            return "-"
        return f"{balance.balance} + {balance.bonus_balance}"

    @display(description=_("Generations"), ordering="gen_count")
    def generations(self, obj: TgUser) -> int:
        return obj.gen_count

    @display(
        description=_("State"),
        label={"banned": "danger", "blocked": "warning", "active": "success"},
    )
    def state(self, obj: TgUser) -> tuple[str, str]:
        if obj.is_banned:
            return "banned", gettext("banned")
        if obj.bot_blocked:
            return "blocked", gettext("blocked the bot")
        return "active", gettext("active")

    @display(description=_("Refunds after spending"))
    def spent_refunds(self, obj: TgUser) -> str:
        """The policy's flag (botapp.services.refunds.flag_spent_refund): refunds the user had spent part of."""
        found = spent_refunds(user_id=obj.pk) if obj.pk else []
        if not found:
            return gettext("none")
        links = format_html_join(
            ", ",
            '<a href="{}">#{}</a> ({})',
            ((reverse("admin:botapp_payment_change", args=(s.payment_id,)), s.payment_id, s.shortfall) for s in found),
        )
        return format_html(
            "{} — {}",
            ngettext("%(count)d refund, tokens spent first:", "%(count)d refunds, tokens spent first:", len(found))
            % {"count": len(found)},
            links,
        )

    @display(description=_("Referrals"))
    def referrals_count(self, obj: TgUser) -> int:
        return obj.ref_count

    @display(description=_("Related"))
    def links(self, obj: TgUser) -> str:
        if obj.pk is None:
            return "-"
        return format_html(
            '<a href="{}">{}</a> · <a href="{}">{}</a> · <a href="{}">{}</a> · <a href="{}">{}</a>'
            ' · <a href="#timeline">{}</a>',
            changelist_url(Transaction, user__id__exact=obj.pk),
            gettext("Transactions"),
            changelist_url(GenRequest, user__id__exact=obj.pk),
            gettext("Generations"),
            changelist_url(Payment, user__id__exact=obj.pk),
            gettext("Payments"),
            changelist_url(SupportMessage, user__id__exact=obj.pk),
            gettext("Support messages"),
            gettext("Timeline"),
        )

    # -- actions --
    @action(description=_("Grant or take tokens…"), permissions=["adjust_balance"], icon="account_balance_wallet")
    def adjust_balance(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        users = list(queryset.select_related("balance").order_by("pk")[: MAX_ADJUST_USERS + 1])
        if len(users) > MAX_ADJUST_USERS:
            self.message_user(
                request,
                gettext("Select at most %(max)d users for one balance adjustment.") % {"max": MAX_ADJUST_USERS},
                messages.ERROR,
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
                "title": gettext("Grant or take tokens"),
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
        bucket_label = str(Transaction.Bucket(bucket).label).lower()
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
            done.append(
                gettext("%(user)s → %(balance)s + %(bonus)s bonus")
                % {"user": user, "balance": result.balance, "bonus": result.bonus_balance}
            )
            self.log_change(
                request,
                user,
                gettext("Balance adjusted by %(amount)s (%(bucket)s): %(reason)s")
                % {"amount": signed(amount), "bucket": bucket_label, "reason": reason},
            )
        if done:
            params = {"amount": abs(amount), "bucket": bucket_label, "users": listing(done)}
            text = (
                gettext("Granted %(amount)s %(bucket)s tokens: %(users)s.")
                if amount > 0
                else gettext("Took %(amount)s %(bucket)s tokens: %(users)s.")
            )
            self.message_user(request, text % params, messages.SUCCESS)
        if replayed:
            self.message_user(
                request,
                gettext("This form was already applied, nothing changed for: %(users)s.")
                % {"users": listing(replayed)},
                messages.WARNING,
            )
        for line in failed[:MAX_LISTED]:
            self.message_user(request, gettext("Not applied to %(line)s") % {"line": line}, messages.ERROR)
        if len(failed) > MAX_LISTED:
            self.message_user(
                request,
                gettext("… and %(count)d more users failed.") % {"count": len(failed) - MAX_LISTED},
                messages.ERROR,
            )

    @action(description=_("Message the user"), url_path="message", permissions=["send_message"], icon="chat")
    def message_detail(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The user page's "Message the user" button: the form, then back to the user page."""
        user = self.get_object(request, unquote(object_id))
        if user is None:
            raise Http404("no such user")
        change_url = reverse("admin:botapp_tguser_change", args=(user.pk,))
        response = message_users(self, request, [user], back_url=change_url, bulk=False)
        return response or HttpResponseRedirect(change_url)

    @action(description=_("Message selected users…"), permissions=["send_message"], icon="chat")
    def message_selected(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        users = list(queryset.order_by("pk")[: MAX_RECIPIENTS + 1])
        if len(users) > MAX_RECIPIENTS:
            self.message_user(
                request,
                gettext("Select at most %(max)d users for one message.") % {"max": MAX_RECIPIENTS},
                messages.ERROR,
            )
            return None
        return message_users(self, request, users, back_url=reverse("admin:botapp_tguser_changelist"), bulk=True)

    @action(description=_("Ban selected users"), permissions=["change"], icon="block")
    def ban(self, request: HttpRequest, queryset: QuerySet) -> None:
        users = list(queryset.filter(is_banned=False))
        reason = f"banned by {request.user.get_username()}"  # stored on the user, as the ledger's reasons are
        for user in users:
            set_ban(user_id=user.pk, banned=True, reason=reason)
            self.log_change(request, user, gettext("Banned"))
        self.message_user(request, gettext("Banned %(count)d users.") % {"count": len(users)}, messages.SUCCESS)

    @action(description=_("Unban selected users"), permissions=["change"], icon="lock_open")
    def unban(self, request: HttpRequest, queryset: QuerySet) -> None:
        users = list(queryset.filter(is_banned=True))
        for user in users:
            set_ban(user_id=user.pk, banned=False)
            self.log_change(request, user, gettext("Unbanned"))
        self.message_user(request, gettext("Unbanned %(count)d users.") % {"count": len(users)}, messages.SUCCESS)

    @action(description=_("Export selected to CSV"), permissions=["view"], icon="download")
    def export_csv(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        fields = (
            "pk",
            "telegram_id",
            "username",
            "first_name",
            "last_name",
            "language_code",
            *BALANCE_COLUMNS,
            "level",
            "xp",
            "is_banned",
            "bot_blocked",
            "referral_code",
            "referred_by__telegram_id",
            "created_at",
            "last_seen_at",
        )
        if not can_see_balances(request):
            fields = tuple(name for name in fields if name not in BALANCE_COLUMNS)
        header = [name.replace("balance__", "").replace("__", "_") for name in fields]
        header[0] = "id"
        rows = queryset.order_by("pk").values_list(*fields).iterator(chunk_size=2000)
        return csv_response("users", header, rows)


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
