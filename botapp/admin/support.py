"""Users and support, the support tools: a user's timeline (botapp.selectors.support.user_timeline) as
shown on the user page, the form to message users (botapp.services.support), and the support messages
log (read-only)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import formats
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import RangeDateTimeFilter
from unfold.decorators import action, display
from unfold.widgets import UnfoldAdminTextareaWidget

from botapp.admin import media
from botapp.admin.base import PAYMENT_LABELS, STATUS_LABELS, TX_LABELS, ExactIdSearchMixin, ReadOnlyAdminMixin, signed
from botapp.models import GenRequest, Payment, Promocode, SupportMessage, TgUser, Transaction
from botapp.selectors.support import SOURCES, TimelineEntry, shorten, user_timeline
from botapp.services import support as service
from botapp.services.support import MAX_RECIPIENTS, SupportError

TIMELINE_LIMIT = 50
SEND_PERMISSION = "botapp.add_supportmessage"
MESSAGE_LABELS = {
    SupportMessage.Status.PENDING: "info",
    SupportMessage.Status.SENDING: "info",
    SupportMessage.Status.SENT: "success",
    SupportMessage.Status.BLOCKED: "warning",
    SupportMessage.Status.FAILED: "danger",
    SupportMessage.Status.UNKNOWN: "",
}
SOURCE_MODELS: dict[str, type[Model]] = {
    "payment": Payment,
    "generation": GenRequest,
    "ledger": Transaction,
    "message": SupportMessage,
    "promocode": Promocode,
}


def can_send(request: HttpRequest) -> bool:
    return bool(request.user.is_active and request.user.is_staff and request.user.has_perm(SEND_PERMISSION))


# --- the timeline ------------------------------------------------------------------------------------------
def _can_view(request: HttpRequest, model: type[Model]) -> bool:
    opts = model._meta
    return request.user.has_perm(f"{opts.app_label}.view_{opts.model_name}") or request.user.has_perm(
        f"{opts.app_label}.change_{opts.model_name}"
    )


def _badge(text: object, variant: str = "") -> SafeString:
    return mark_safe(render_to_string("unfold/helpers/label.html", {"text": text, "type": variant, "size": "md"}))


def _titles() -> dict[str, str]:
    return {
        "payment": _("Payment #%(pk)s"),
        "generation": _("Generation #%(pk)s"),
        "ledger": _("Ledger #%(pk)s"),
        "message": _("Message #%(pk)s"),
        "promocode": _("Promocode #%(pk)s"),
    }


def _link(source: str, pk: int, viewable: set[str]) -> SafeString:
    title = _titles()[source] % {"pk": pk}
    if source not in viewable:
        return format_html("{}", title)
    model = SOURCE_MODELS[source]
    try:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=(pk,))
    except NoReverseMatch:
        return format_html("{}", title)
    return format_html('<a href="{}" class="font-medium text-primary-600 dark:text-primary-500">{}</a>', url, title)


def _amount(entry: TimelineEntry) -> SafeString:
    if entry.amount is None:
        return mark_safe("")
    css = "text-green-700 dark:text-green-400" if entry.amount > 0 else "text-red-700 dark:text-red-400"
    return format_html('<span class="font-semibold whitespace-nowrap {}">{}</span>', css, signed(entry.amount))


def _status(entry: TimelineEntry) -> SafeString:
    if not entry.status:
        return mark_safe("")
    labels = {
        "payment": PAYMENT_LABELS,
        "generation": STATUS_LABELS,
        "message": MESSAGE_LABELS,
    }.get(entry.source, {})
    return _badge(entry.status_label, labels.get(entry.status, ""))


def _details(entry: TimelineEntry, viewable: set[str]) -> SafeString:
    parts: list[SafeString] = []
    if entry.model:
        parts.append(format_html('<span class="font-medium">{}</span>', entry.model))
    if entry.detail:
        parts.append(format_html("{}", entry.detail))
    if entry.text:
        parts.append(
            format_html('<span class="text-font-subtle-light dark:text-font-subtle-dark">{}</span>', entry.text)
        )
    if entry.related:
        parts.append(format_html_join(" · ", "{}", ((_link(source, pk, viewable),) for source, pk in entry.related)))
    if entry.refunded:
        parts.append(_badge(_("refunded"), "warning"))
    if entry.error:
        parts.append(_badge(shorten(entry.error, 60), "danger"))
    return format_html_join(" · ", "{}", ((part,) for part in parts))


def timeline_table(request: HttpRequest, *, user_id: int, limit: int = TIMELINE_LIMIT) -> dict:
    """The user page's timeline as unfold's table component takes it (only the sources the operator
    may view; result previews for generations)."""
    viewable = {source for source, model in SOURCE_MODELS.items() if _can_view(request, model)}
    entries = user_timeline(user_id=user_id, limit=limit, sources=[source for source in SOURCES if source in viewable])
    kind_variants = {"payment": "primary", "generation": "info", "message": "primary"}
    rows = []
    for entry in entries:
        kind_variant = TX_LABELS.get(entry.kind, "") if entry.source == "ledger" else kind_variants[entry.source]
        what = format_html("{}<br>{}", _link(entry.source, entry.pk, viewable), _badge(entry.kind_label, kind_variant))
        files = media.previews(entry.pk, entry.files) if entry.source == "generation" else mark_safe("")
        rows.append(
            [
                format_html(
                    '<span class="whitespace-nowrap">{}</span>', formats.date_format(entry.at, "SHORT_DATETIME_FORMAT")
                ),
                what,
                _amount(entry),
                _status(entry),
                _details(entry, viewable),
                files,
            ]
        )
    headers = [_("When"), _("What"), _("Amount"), _("Status"), _("Details"), _("Result")]
    return {"headers": headers, "rows": rows}


# --- messaging users -----------------------------------------------------------------------------------------
class SupportMessageForm(forms.Form):
    text = forms.CharField(
        label=gettext_lazy("Text"),
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 8}),
        # Escaped: a form's help text is rendered as HTML, and this one shows tags.
        help_text=escape(
            gettext_lazy(
                "Telegram HTML: <b>, <i>, <u>, <s>, <a href>, <code>, <pre>, <blockquote>, <tg-spoiler>; "
                "escape other <, & as &lt; &amp;. The user sees it under “A message from support”, in their "
                "language."
            )
        ),
    )
    # One id per rendered form: submitting it twice (a double click, a browser retry) sends once.
    operation_id = forms.UUIDField(widget=forms.HiddenInput)

    def clean_text(self) -> str:
        try:
            return service.check_text(text=self.cleaned_data["text"])
        except SupportError as exc:
            raise ValidationError(exc.message) from None


def message_users(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    users: Sequence[TgUser],
    *,
    back_url: str,
    bulk: bool,
) -> TemplateResponse | None:
    """The "message users" form (GET) and its submission (POST with `apply`): queues one message per user
    and returns None (the caller redirects), or the form again with the errors."""
    if not can_send(request):
        raise PermissionDenied
    if "apply" in request.POST:
        form = SupportMessageForm(request.POST)
        if form.is_valid():
            try:
                queued = service.queue_messages(
                    user_ids=[user.pk for user in users],
                    text=form.cleaned_data["text"],
                    operator=request.user,
                    operation_id=str(form.cleaned_data["operation_id"]),
                )
            except SupportError as exc:
                form.add_error(None, exc.message)
            else:
                _report(model_admin, request, queued)
                return None
    else:
        form = SupportMessageForm(initial={"operation_id": uuid.uuid4()})
    request.current_app = model_admin.admin_site.name
    count = len(users)
    return TemplateResponse(
        request,
        "admin/botapp/tguser/support_message.html",
        {
            **model_admin.admin_site.each_context(request),
            "title": ngettext("Message %(count)d user", "Message %(count)d users", count) % {"count": count},
            "subtitle": None,
            "opts": model_admin.opts,
            "media": model_admin.media + form.media,
            "form": form,
            "users": users,
            "bulk": bulk,
            "action_name": "message_selected",
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "back_url": back_url,
            "max_recipients": MAX_RECIPIENTS,
        },
    )


def _report(model_admin: admin.ModelAdmin, request: HttpRequest, queued: service.Queued) -> None:
    if queued.created:
        names = ", ".join(str(row.user) for row in queued.created[:20])
        model_admin.message_user(
            request,
            ngettext(
                "The message to %(names)s is queued; its status is on the user page and in Support messages.",
                "The messages to %(names)s are queued; their status is on the user pages and in Support messages.",
                len(queued.created),
            )
            % {"names": names},
            messages.SUCCESS,
        )
        for row in queued.created:
            model_admin.log_change(request, row.user, _("Support message #%(pk)s queued") % {"pk": row.pk})
    if queued.replayed:
        model_admin.message_user(request, _("This form was already sent; nothing was sent again."), messages.WARNING)


# --- the log ----------------------------------------------------------------------------------------------------
@admin.register(SupportMessage)
class SupportMessageAdmin(ExactIdSearchMixin, ReadOnlyAdminMixin, ModelAdmin):
    """Read-only: a row is written by the message form and moved only by the send task."""

    list_display = ("id", "created_at", "user", "operator_name", "status_badge", "short_text", "sent_at", "error")
    list_select_related = ("user",)
    list_filter = ("status", ("created_at", RangeDateTimeFilter))
    list_filter_submit = True
    search_fields = ("user__username", "operator_name")
    exact_id_search_fields = ("pk", "user__telegram_id")
    ordering = ("-created_at", "-id")
    show_full_result_count = False
    actions = ("requeue_pending",)
    fields = (
        "user",
        "operator_name",
        "status",
        "text_display",
        "error",
        "message_id",
        "created_at",
        "claimed_at",
        "sent_at",
    )
    readonly_fields = ("text_display",)

    def has_send_permission(self, request: HttpRequest, obj=None) -> bool:
        return can_send(request)

    @display(description=gettext_lazy("Status"), ordering="status", label=MESSAGE_LABELS)
    def status_badge(self, obj: SupportMessage) -> tuple[str, str]:
        return obj.status, obj.get_status_display()

    @display(description=gettext_lazy("Text"))
    def short_text(self, obj: SupportMessage) -> str:
        return shorten(obj.text, 80)

    @display(description=gettext_lazy("Text"))
    def text_display(self, obj: SupportMessage) -> str:
        return format_html('<pre class="text-sm" style="white-space:pre-wrap">{}</pre>', obj.text)

    @action(description=gettext_lazy("Queue the pending ones again"), permissions=["send"], icon="send")
    def requeue_pending(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        count = service.requeue(message_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(
            request,
            ngettext("%(count)d pending message queued.", "%(count)d pending messages queued.", count)
            % {"count": count},
            messages.SUCCESS if count else messages.WARNING,
        )
        return None
