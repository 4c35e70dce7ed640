"""Support inbox and the bot's editable texts: users' support requests (/paysupport) and the texts an
operator edits (the terms of service, the payment support introduction)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe as mark
from django.utils.text import Truncator
from django.utils.translation import gettext, gettext_lazy
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import RangeDateTimeFilter
from unfold.decorators import action, display

from botapp.admin.base import ExactIdSearchMixin
from botapp.models import BotText, SupportRequest
from botapp.selectors.texts import check_bot_text
from botapp.telegram.html import HtmlError

REQUEST_LABELS = {
    SupportRequest.Status.OPEN: "warning",
    SupportRequest.Status.ANSWERED: "success",
    SupportRequest.Status.CLOSED: "",
}


class BotTextForm(forms.ModelForm):
    """Each language's text is checked as Telegram would take it (HTML, length) before it is saved."""

    class Meta:
        model = BotText
        fields = ("key", "text_ru", "text_en")

    def clean(self):
        data = super().clean()
        key = data.get("key")
        for field in ("text_ru", "text_en"):
            text = (data.get(field) or "").strip()
            if key and text:
                try:
                    check_bot_text(key=key, text=text)
                except HtmlError as exc:
                    self.add_error(field, str(exc))
        return data


@admin.register(BotText)
class BotTextAdmin(ModelAdmin):
    """The operator's version of a bot text, per language; an empty one means the default text."""

    form = BotTextForm
    list_display = ("key", "preview_ru", "preview_en", "updated_at")
    readonly_fields = ("updated_at",)
    fields = ("key", "text_ru", "text_en", "updated_at")

    def get_readonly_fields(self, request, obj=None):
        # The key says where the text is shown: fixed once the row exists.
        return ("key", "updated_at") if obj is not None else ("updated_at",)

    @display(description=gettext_lazy("Russian"))
    def preview_ru(self, obj: BotText) -> str:
        return Truncator(obj.text_ru).chars(80) or gettext("(default)")

    @display(description=gettext_lazy("English"))
    def preview_en(self, obj: BotText) -> str:
        return Truncator(obj.text_en).chars(80) or gettext("(default)")


@admin.register(SupportRequest)
class SupportRequestAdmin(ExactIdSearchMixin, ModelAdmin):
    """Users' requests from /paysupport. Only the status is edited: reply with "Message the user" on
    the user's page, then mark the request answered or closed."""

    list_display = ("id", "created_at", "user", "status_badge", "short_text", "payments_count")
    list_select_related = ("user",)
    list_filter = ("status", ("created_at", RangeDateTimeFilter))
    list_filter_submit = True
    search_fields = ("user__username", "text")
    exact_id_search_fields = ("pk", "user__telegram_id")
    ordering = ("-created_at", "-id")
    show_full_result_count = False
    actions = ("mark_answered", "mark_closed")
    fields = ("user", "reply_link", "status", "text", "payments_table", "created_at", "updated_at")
    readonly_fields = ("user", "reply_link", "text", "payments_table", "created_at", "updated_at")

    def has_add_permission(self, request, obj=None):
        return False  # written by the bot

    def has_delete_permission(self, request, obj=None):
        return False

    @display(description=gettext_lazy("Status"), ordering="status", label=REQUEST_LABELS)
    def status_badge(self, obj: SupportRequest) -> tuple[str, str]:
        return obj.status, obj.get_status_display()

    @display(description=gettext_lazy("Text"))
    def short_text(self, obj: SupportRequest) -> str:
        return Truncator(obj.text).chars(80)

    @display(description=gettext_lazy("Payments"))
    def payments_count(self, obj: SupportRequest) -> int:
        return len(obj.payments or [])

    @display(description=gettext_lazy("Reply"))
    def reply_link(self, obj: SupportRequest) -> str:
        url = reverse("admin:botapp_tguser_change", args=(obj.user_id,))
        return format_html('<a href="{}">{}</a>', url, gettext("Open the user's page (timeline, message the user)"))

    @display(description=gettext_lazy("Payments attached"))
    def payments_table(self, obj: SupportRequest) -> str:
        rows = [row for row in (obj.payments or []) if isinstance(row, dict)]
        if not rows:
            return "-"
        columns = sorted({key for row in rows for key in row})
        head = "".join(format_html('<th class="px-2 text-left">{}</th>', name) for name in columns)
        body = "".join(
            "<tr>" + "".join(format_html('<td class="px-2">{}</td>', row.get(name, "")) for name in columns) + "</tr>"
            for row in rows
        )
        return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", mark(head), mark(body))

    def _set_status(self, request: HttpRequest, queryset: QuerySet, status: str) -> None:
        count = queryset.exclude(status=status).update(status=status)
        self.message_user(request, gettext("Updated %(count)d support requests.") % {"count": count}, messages.SUCCESS)

    @action(description=gettext_lazy("Mark as answered"), permissions=["change"], icon="mark_email_read")
    def mark_answered(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_status(request, queryset, SupportRequest.Status.ANSWERED)

    @action(description=gettext_lazy("Close"), permissions=["change"], icon="task_alt")
    def mark_closed(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_status(request, queryset, SupportRequest.Status.CLOSED)
