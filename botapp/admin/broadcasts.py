"""The Broadcast admin: compose (checked as Telegram would), see the audience and its size, preview to
the operators, start now or at a time, follow the progress live, pause, resume, cancel.

Thin: every check and every state change is `botapp.services.broadcasts`; counts are
`botapp.selectors.broadcasts`. Starting, previewing, pausing, resuming and cancelling need the
`botapp.send_broadcast` permission (composing a draft only needs the model's add/change).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import RangeDateTimeFilter
from unfold.decorators import action, display

from botapp.models import Broadcast
from botapp.selectors import broadcasts as selectors
from botapp.services import broadcasts as service
from botapp.services.broadcasts import BroadcastError

SEND_PERMISSION = "botapp.send_broadcast"
STATUS_LABELS = {
    Broadcast.Status.DRAFT: "",
    Broadcast.Status.SCHEDULED: "info",
    Broadcast.Status.SENDING: "warning",
    Broadcast.Status.PAUSED: "warning",
    Broadcast.Status.DONE: "success",
    Broadcast.Status.CANCELLED: "danger",
}
MESSAGE_FIELDS = ("text", "photo", "button_text", "button_url", "button_screen")
AUDIENCE_FIELDS = (
    "active_within_days",
    "paid",
    "has_balance",
    "language",
    "level_min",
    "level_max",
    "never_generated",
    "joined_after",
    "joined_before",
    "referred_only",
)
SENDING_FIELDS = ("send_at", "allow_paid_broadcast")


def _https_urls(db_field, **kwargs):
    if db_field.name == "button_url":
        kwargs["assume_scheme"] = "https"
    return db_field.formfield(**kwargs)


class BroadcastForm(forms.ModelForm):
    """Refuses what Telegram would refuse, with the reason, on the field it concerns."""

    class Meta:
        model = Broadcast
        fields = (*MESSAGE_FIELDS, *AUDIENCE_FIELDS, *SENDING_FIELDS)
        formfield_callback = _https_urls

    def clean_photo(self):
        photo = self.cleaned_data.get("photo")
        if photo and hasattr(photo, "size") and "photo" in self.changed_data:
            try:
                service.check_photo(file=photo)
            except BroadcastError as exc:
                raise ValidationError(exc.message) from None
        return photo

    def clean(self):
        data = super().clean()
        if "text" in data:
            try:
                service.check_text(text=data["text"], with_photo=bool(data.get("photo")))
            except BroadcastError as exc:
                self.add_error("text", exc.message)
        try:
            service.check_button(
                text=data.get("button_text") or "",
                url=data.get("button_url") or "",
                screen=data.get("button_screen") or "",
            )
        except BroadcastError as exc:
            self.add_error("button_text", exc.message)
        low, high = data.get("level_min"), data.get("level_max")
        if low is not None and high is not None and low > high:
            self.add_error("level_max", "The highest level is below the lowest one.")
        after, before = data.get("joined_after"), data.get("joined_before")
        if after and before and after >= before:
            self.add_error("joined_before", "Must be after 'joined after'.")
        return data


@admin.register(Broadcast)
class BroadcastAdmin(ModelAdmin):
    form = BroadcastForm
    list_display = ("id", "created_at", "status_badge", "short_text", "send_at", "progress", "started_at")
    list_filter = ("status", ("created_at", RangeDateTimeFilter))
    list_filter_submit = True
    search_fields = ("text",)
    ordering = ("-created_at",)
    actions = ("pause_selected", "resume_selected", "cancel_selected")
    actions_detail = ("preview", "start", "pause", "resume", "cancel")
    fieldsets = (
        ("Message", {"fields": MESSAGE_FIELDS}),
        ("Audience (all conditions together; users who blocked the bot or are banned never get it)",
         {"fields": (*AUDIENCE_FIELDS, "recipients")}),
        ("Sending", {"fields": (*SENDING_FIELDS, "status", "created_by")}),
        ("Progress", {"fields": ("live_progress", "started_at", "finished_at")}),
    )  # fmt: skip
    base_readonly = ("recipients", "status", "created_by", "live_progress", "started_at", "finished_at")

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "button_url":
            kwargs["assume_scheme"] = "https"
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    # --- permissions ------------------------------------------------------------------------------
    def has_send_permission(self, request: HttpRequest, object_id: object = None) -> bool:
        return request.user.has_perm(SEND_PERMISSION)

    def has_delete_permission(self, request: HttpRequest, obj: Broadcast | None = None) -> bool:
        if obj is not None and obj.status in (*Broadcast.ACTIVE, Broadcast.Status.SCHEDULED):
            return False  # cancel it first
        return super().has_delete_permission(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Broadcast | None = None):
        if obj is not None and obj.status not in Broadcast.EDITABLE:
            return (*MESSAGE_FIELDS, *AUDIENCE_FIELDS, *SENDING_FIELDS, *self.base_readonly)
        return self.base_readonly

    def save_model(self, request, obj, form, change):
        if change and obj.status not in Broadcast.EDITABLE:
            raise PermissionDenied  # started: the message and the audience are fixed
        if obj.status == Broadcast.Status.SCHEDULED:
            obj.status = Broadcast.Status.DRAFT  # an edited scheduled broadcast must be started again
            self.message_user(request, "Edited: it is a draft again; start it to schedule it.", messages.WARNING)
        if not obj.created_by:
            obj.created_by = request.user.get_username()
        super().save_model(request, obj, form, change)

    # --- columns and read-only fields ------------------------------------------------------------
    @display(description="Status", ordering="status", label=STATUS_LABELS)
    def status_badge(self, obj: Broadcast) -> tuple[str, str]:
        return obj.status, obj.get_status_display()

    @display(description="Text")
    def short_text(self, obj: Broadcast) -> str:
        return Truncator(obj.text).chars(60)

    @display(description="Delivered / blocked / failed / unknown of total")
    def progress(self, obj: Broadcast) -> str:
        if obj.status in Broadcast.EDITABLE:
            return "-"
        return f"{obj.delivered} / {obj.blocked} / {obj.failed} / {obj.unknown} of {obj.total}"

    @display(description="Recipients")
    def recipients(self, obj: Broadcast) -> str:
        if obj.pk is None:
            return "Save the draft to see how many users it reaches."
        if obj.status not in Broadcast.EDITABLE:
            return f"{obj.total} (fixed when it started)"
        count = selectors.audience_count(broadcast=obj)
        text = f"{count} user{'s' if count != 1 else ''} now"
        if obj.allow_paid_broadcast:
            text += f"; paid broadcast: {selectors.paid_cost_stars(recipients=count)} Stars (0.1 ⭐ per message)"
        return text

    @display(description="Live progress")
    def live_progress(self, obj: Broadcast) -> str:
        if obj.pk is None or obj.status in Broadcast.EDITABLE:
            return "Not started."
        url = reverse("admin:botapp_broadcast_progress", args=(obj.pk,))
        # Polled every 2 s while it runs (the JSON view below); stops once it is finished.
        return format_html(
            '<div id="broadcast-progress" data-url="{}">{}</div>'
            "<script>(function(){{var box=document.getElementById('broadcast-progress');"
            "function show(p){{box.textContent=p.status+': '+p.delivered+' delivered, '+p.blocked+' blocked, '"
            "+p.failed+' failed, '+p.unknown+' unknown, '+(p.pending+p.sending)+' pending (of '+p.total+')';}}"
            "function poll(){{fetch(box.dataset.url,{{credentials:'same-origin'}})"
            ".then(function(r){{return r.json();}})"
            ".then(function(p){{show(p);if(!p.finished){{setTimeout(poll,2000);}}}})"
            ".catch(function(){{setTimeout(poll,5000);}});}}"
            "poll();}})();</script>",
            url,
            self._progress_text(obj.pk),
        )

    @staticmethod
    def _progress_text(broadcast_id: int) -> str:
        p = selectors.progress(broadcast_id=broadcast_id)
        if p is None:
            return "-"
        return (
            f"{p.status}: {p.delivered} delivered, {p.blocked} blocked, {p.failed} failed, {p.unknown} unknown, "
            f"{p.pending + p.sending} pending (of {p.total})"
        )

    # --- the progress endpoint -----------------------------------------------------------------------
    def get_urls(self):
        custom = [
            path(
                "<int:object_id>/progress/",
                self.admin_site.admin_view(self.progress_view),
                name="botapp_broadcast_progress",
            )
        ]
        return custom + super().get_urls()

    def progress_view(self, request: HttpRequest, object_id: int) -> JsonResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        progress = selectors.progress(broadcast_id=object_id)
        if progress is None:
            return JsonResponse({"error": "not found"}, status=404)
        return JsonResponse(progress.as_dict())

    # --- detail actions (buttons on the change page): GET asks, POST does ------------------------------
    def _change_url(self, object_id) -> str:
        return reverse("admin:botapp_broadcast_change", args=(object_id,))

    def _confirm(self, request: HttpRequest, broadcast: Broadcast, *, verb: str, lines: list[str]) -> TemplateResponse:
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request,
            "admin/botapp/broadcast/confirm.html",
            {
                **self.admin_site.each_context(request),
                "title": f"{verb} broadcast #{broadcast.pk}?",
                "opts": self.opts,
                "broadcast": broadcast,
                "verb": verb,
                "lines": lines,
                "change_url": self._change_url(broadcast.pk),
            },
        )

    def _do(self, request: HttpRequest, object_id, verb: str, lines, perform) -> HttpResponse:
        broadcast = get_object_or_404(Broadcast, pk=object_id)
        if request.method != "POST":
            return self._confirm(request, broadcast, verb=verb, lines=lines(broadcast))
        try:
            text, level = perform(broadcast)
        except BroadcastError as exc:
            text, level = f"Broadcast #{broadcast.pk}: {exc.message}", messages.ERROR
        self.message_user(request, text, level)
        return HttpResponseRedirect(self._change_url(broadcast.pk))

    @action(description="Send to me first", url_path="preview", permissions=["send"], icon="visibility")
    def preview(self, request: HttpRequest, object_id) -> HttpResponse:
        def lines(b: Broadcast) -> list[str]:
            from django.conf import settings

            ids = ", ".join(str(i) for i in settings.ADMIN_IDS) or "nobody: ADMIN_IDS is empty"
            return [f"It goes to the operators' Telegram ids (ADMIN_IDS): {ids}."]

        def perform(b: Broadcast):
            result = service.preview(broadcast_id=b.pk)
            parts = []
            if result.sent:
                parts.append(f"sent to {', '.join(map(str, result.sent))}")
            parts += [f"not sent to {chat_id}: {reason}" for chat_id, reason in result.failed.items()]
            return f"Preview of #{b.pk}: " + "; ".join(parts), messages.SUCCESS if result.sent else messages.ERROR

        return self._do(request, object_id, "Preview", lines, perform)

    @action(description="Start…", url_path="start", permissions=["send"], icon="send")
    def start(self, request: HttpRequest, object_id) -> HttpResponse:
        def lines(b: Broadcast) -> list[str]:
            count = selectors.audience_count(broadcast=b)
            out = [f"Recipients now: {count}."]
            if b.send_at and b.send_at > timezone.now():
                out.append(f"It will be sent at {timezone.localtime(b.send_at):%Y-%m-%d %H:%M %Z}.")
            else:
                out.append("It will be sent now.")
            if b.allow_paid_broadcast:
                stars = selectors.paid_cost_stars(recipients=count)
                out.append(f"Paid broadcast: about {stars} Stars from the bot's balance (0.1 ⭐ per message).")
            if b.status != Broadcast.Status.DRAFT:
                out.append(f"It is {b.get_status_display().lower()}: it cannot be started again.")
            return out

        def perform(b: Broadcast):
            started = service.start(broadcast_id=b.pk, by=request.user.get_username())
            if started.status == Broadcast.Status.SCHEDULED:
                return f"Broadcast #{b.pk} is scheduled for {started.send_at:%Y-%m-%d %H:%M %Z}.", messages.SUCCESS
            return f"Broadcast #{b.pk} is being sent.", messages.SUCCESS

        return self._do(request, object_id, "Start", lines, perform)

    def _transition(self, request, object_id, verb: str, func, done: str) -> HttpResponse:
        def perform(b: Broadcast):
            if func(broadcast_id=b.pk):
                return f"Broadcast #{b.pk} {done}.", messages.SUCCESS
            state = b.get_status_display().lower()
            return f"Broadcast #{b.pk} is {state}: nothing to {verb.lower()}.", messages.WARNING

        return self._do(request, object_id, verb, lambda b: [f"It is {b.get_status_display().lower()} now."], perform)

    @action(description="Pause", url_path="pause", permissions=["send"], icon="pause")
    def pause(self, request: HttpRequest, object_id) -> HttpResponse:
        return self._transition(request, object_id, "Pause", service.pause, "is paused")

    @action(description="Resume", url_path="resume", permissions=["send"], icon="play_arrow")
    def resume(self, request: HttpRequest, object_id) -> HttpResponse:
        return self._transition(request, object_id, "Resume", service.resume, "is being sent again")

    @action(description="Cancel", url_path="cancel", permissions=["send"], icon="cancel")
    def cancel(self, request: HttpRequest, object_id) -> HttpResponse:
        return self._transition(request, object_id, "Cancel", service.cancel, "is cancelled")

    # --- bulk actions on the list -------------------------------------------------------------------
    def _bulk(self, request: HttpRequest, queryset: QuerySet, func, done: str) -> None:
        changed = [f"#{pk}" for pk in queryset.values_list("pk", flat=True) if func(broadcast_id=pk)]
        if changed:
            self.message_user(request, f"{done}: {', '.join(changed)}.", messages.SUCCESS)
        else:
            self.message_user(request, "Nothing changed.", messages.WARNING)

    @action(description="Pause selected broadcasts", permissions=["send"], icon="pause")
    def pause_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._bulk(request, queryset, service.pause, "Paused")

    @action(description="Resume selected broadcasts", permissions=["send"], icon="play_arrow")
    def resume_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._bulk(request, queryset, service.resume, "Resumed")

    @action(description="Cancel selected broadcasts", permissions=["send"], icon="cancel")
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._bulk(request, queryset, service.cancel, "Cancelled")
