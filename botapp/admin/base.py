"""What every admin page shares: status badges, mixins (read-only, exact id search, activation), the
ledger rows inline and the CSV export."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from datetime import timedelta
from decimal import Decimal

from django.contrib import messages
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.db.models import Count, IntegerField, Model, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.text import Truncator
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _
from unfold.admin import TabularInline
from unfold.decorators import action

from botapp.models import (
    GenRequest,
    Payment,
    TgUser,
    Transaction,
)

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
def listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    if len(items) <= MAX_LISTED:
        return shown
    return gettext("%(shown)s and %(count)s more") % {"shown": shown, "count": len(items) - MAX_LISTED}


def changelist_url(model: type[Model], **params: object) -> str:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


WRAP_ANYWHERE = "overflow-wrap:anywhere"  # a long word (an id, a code) wraps rather than widening its column


def shortened(text: str | None, chars: int) -> str:
    """`text` cut to `chars` characters with an ellipsis, the whole of it in a tooltip; wraps anywhere."""
    if not text:
        return "-"
    if len(text) <= chars:
        return format_html('<span style="{}">{}</span>', WRAP_ANYWHERE, text)
    return format_html('<span title="{}" style="{}">{}</span>', text, WRAP_ANYWHERE, Truncator(text).chars(chars))


def user_cell(user: TgUser | None, *, chars: int = 20) -> str:
    """A user in a list: the @username or name (shortened, whole in the tooltip) linking to the user,
    the Telegram id under it."""
    if user is None:
        return "-"
    name = f"@{user.username}" if user.username else (user.full_name or gettext("user"))
    url = reverse("admin:botapp_tguser_change", args=(user.pk,))
    return format_html(
        '<a href="{}" title="{}" style="{}">{}</a><div class="text-base-500 text-xs">{}</div>',
        url,
        name,
        WRAP_ANYWHERE,
        Truncator(name).chars(chars),
        user.telegram_id,
    )


def signed(value: Decimal) -> str:
    """+10.50 / -2.00, with the admin language's decimal separator."""
    return ("+" if value > 0 else "") + number_format(value)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Where a spreadsheet may cut a cell in two: the separators Excel and LibreOffice split on (a Russian
# Excel splits on ";"), and line breaks, whatever the quoting.
_SPLIT = re.compile(r"([,;|\t\r\n])")


def csv_cell(value: object) -> object:
    """Neutralise spreadsheet formulas in user-supplied text (CSV injection): every piece of the text
    that a spreadsheet could split out as a cell of its own (after a separator or a line break) and
    that starts with = + - @ (after spaces) gets a leading apostrophe, so `cat;=1+1` opens no formula
    in a spreadsheet that splits on ";". Numbers stay as they are."""
    if value is None:
        return ""
    if not isinstance(value, str):
        return value
    pieces = _SPLIT.split(value)
    for index in range(0, len(pieces), 2):  # the even items are the text between separators
        piece = pieces[index]
        stripped = piece.lstrip(" ")
        if stripped[:1] in _FORMULA_START:
            pieces[index] = piece[: len(piece) - len(stripped)] + "'" + stripped
    if value[:1] in ("\t", "\r"):  # a leading tab or CR is itself a separator: the cell still starts so
        pieces.insert(0, "'")
    return "".join(pieces)


def csv_response(filename: str, header: Iterable[str], rows: Iterable[Iterable[object]]) -> HttpResponse:
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}-{stamp}.csv"'
    response.write("\ufeff")  # lets spreadsheet programs detect UTF-8 (names are often Cyrillic)
    writer = csv.writer(response, quoting=csv.QUOTE_ALL)  # every cell quoted: its separators stay inside
    writer.writerow(header)
    for row in rows:
        writer.writerow([csv_cell(value) for value in row])
    return response


def count_of(model: type[Model], fk: str) -> Coalesce:
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
    """View-only: no add, no change, no delete; the write paths refuse even if reached directly.

    Only the view permission opens these pages: Django lets the change permission in too, but nothing
    here can be changed, and `botapp.change_payment` must not show the payments to someone without
    `botapp.view_payment` (the money rule, see botapp/admin/dashboard.py)."""

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.{get_permission_codename('view', opts)}")

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

    @action(description=_("Activate selected"), permissions=["change"], icon="toggle_on")
    def activate(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.filter(is_active=False).update(is_active=True)
        self.message_user(
            request,
            gettext("Activated: %(count)s.") % {"count": count},
            messages.SUCCESS,
        )

    @action(description=_("Deactivate selected"), permissions=["change"], icon="toggle_off")
    def deactivate(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.filter(is_active=True).update(is_active=False)
        self.message_user(
            request,
            gettext("Deactivated: %(count)s.") % {"count": count},
            messages.SUCCESS,
        )


class LinkedTransactionInline(ReadOnlyInline):
    """The ledger rows that belong to one payment / generation / promocode."""

    model = Transaction
    verbose_name_plural = _("Ledger rows")
    fields = ("created_at", "user", "kind", "bucket", "amount", "balance_after", "description")
    readonly_fields = fields
    ordering = ("-created_at", "-id")
    per_page = 20

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")


def titled(filter_class: type, title: str) -> type:
    """`filter_class` under a title of its own: a date filter titled by its field would read "By created"
    ("By %(title)s" is the filter's heading); ("created_at", titled(RangeDateTimeFilter, DATE_CREATED))
    reads "By creation date"."""

    class Titled(filter_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.title = title

    Titled.__name__ = Titled.__qualname__ = f"Titled{filter_class.__name__}"
    return Titled


# Filter titles (a heading "By ..." in English; Russian shows the title alone, so it is capitalised there).
DATE_CREATED = pgettext_lazy("list filter", "creation date")
DATE_PAID = pgettext_lazy("list filter", "payment date")
DATE_UPDATED = pgettext_lazy("list filter", "last update")
DATE_EXPIRES = pgettext_lazy("list filter", "expiry date")
DATE_ACTIVATED = pgettext_lazy("list filter", "activation date")
DATE_SEEN = pgettext_lazy("list filter", "last activity")


def format_duration(delta: timedelta) -> str:
    seconds = max(delta.total_seconds(), 0)
    if seconds < 60:
        return gettext("%(seconds).1f s") % {"seconds": seconds}
    minutes, seconds = divmod(int(seconds), 60)
    return gettext("%(minutes)s min %(seconds)s s") % {"minutes": minutes, "seconds": seconds}
