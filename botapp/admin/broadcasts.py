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
from django.utils.html import escape, format_html
from django.utils.text import Truncator
from django.utils.translation import gettext, ngettext, pgettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import RangeDateTimeFilter
from unfold.decorators import action, display

from botapp.admin.base import DATE_CREATED, titled
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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "text" in self.fields:
            # The admin shows a help text as HTML: the list of tags must read as text, not vanish as markup.
            self.fields["text"].help_text = escape(Broadcast._meta.get_field("text").help_text)

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
            self.add_error("level_max", _("The highest level is below the lowest one."))
        after, before = data.get("joined_after"), data.get("joined_before")
        if after and before and after >= before:
            self.add_error("joined_before", _("Must be after “joined after”."))
        return data


@admin.register(Broadcast)
class BroadcastAdmin(ModelAdmin):
    form = BroadcastForm
    list_display = ("id", "created_at", "status_badge", "short_text", "send_at", "progress", "started_at")
    list_filter = ("status", ("created_at", titled(RangeDateTimeFilter, DATE_CREATED)))
    list_filter_submit = True
    search_fields = ("text",)
    ordering = ("-created_at",)
    actions = ("pause_selected", "resume_selected", "cancel_selected")
    actions_detail = ("preview", "start", "pause", "resume", "cancel")
    fieldsets = (
        (_("Message"), {"fields": MESSAGE_FIELDS}),
        (_("Audience (all conditions together; users who blocked the bot or are banned never get it)"),
         {"fields": (*AUDIENCE_FIELDS, "recipients")}),
        (_("Sending"), {"fields": (*SENDING_FIELDS, "status", "created_by")}),
        (_("Progress"), {"fields": ("live_progress", "started_at", "finished_at")}),
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
            self.message_user(
                request, gettext("Edited: it is a draft again; start it to schedule it."), messages.WARNING
            )
        if not obj.created_by:
            obj.created_by = request.user.get_username()
        super().save_model(request, obj, form, change)

    # --- columns and read-only fields ------------------------------------------------------------
    @display(description=_("Status"), ordering="status", label=STATUS_LABELS)
    def status_badge(self, obj: Broadcast) -> tuple[str, str]:
        return obj.status, obj.get_status_display()

    @display(description=_("Text"))
    def short_text(self, obj: Broadcast) -> str:
        return Truncator(obj.text).chars(60)

    @display(description=_("Delivered / blocked / failed / unknown of total"))
    def progress(self, obj: Broadcast) -> str:
        if obj.status in Broadcast.EDITABLE:
            return "-"
        return gettext("%(delivered)s / %(blocked)s / %(failed)s / %(unknown)s of %(total)s") % {
            "delivered": obj.delivered,
            "blocked": obj.blocked,
            "failed": obj.failed,
            "unknown": obj.unknown,
            "total": obj.total,
        }

    @display(description=_("Recipients"))
    def recipients(self, obj: Broadcast) -> str:
        if obj.pk is None:
            return gettext("Save the draft to see how many users it reaches.")
        if obj.status not in Broadcast.EDITABLE:
            return gettext("%(total)s (fixed when it started)") % {"total": obj.total}
        count = selectors.audience_count(broadcast=obj)
        text = ngettext("%(count)s user now", "%(count)s users now", count) % {"count": count}
        if obj.allow_paid_broadcast:
            text += "; " + gettext("paid broadcast: %(stars)s Stars (0.1 ⭐ per message)") % {
                "stars": selectors.paid_cost_stars(recipients=count)
            }
        return text

    @display(description=_("Live progress"))
    def live_progress(self, obj: Broadcast) -> str:
        if obj.pk is None or obj.status in Broadcast.EDITABLE:
            return gettext("Not started.")
        url = reverse("admin:botapp_broadcast_progress", args=(obj.pk,))
        # Polled every 2 s while it runs (the JSON view below, whose "text" is this line, translated);
        # stops once it is finished.
        return format_html(
            '<div id="broadcast-progress" data-url="{}">{}</div>'
            "<script>(function(){{var box=document.getElementById('broadcast-progress');"
            "function poll(){{fetch(box.dataset.url,{{credentials:'same-origin'}})"
            ".then(function(r){{return r.json();}})"
            ".then(function(p){{box.textContent=p.text;if(!p.finished){{setTimeout(poll,2000);}}}})"
            ".catch(function(){{setTimeout(poll,5000);}});}}"
            "poll();}})();</script>",
            url,
            progress_text(selectors.progress(broadcast_id=obj.pk)),
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
        return JsonResponse({**progress.as_dict(), "text": progress_text(progress)})

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
                "title": gettext("%(verb)s broadcast #%(id)s?") % {"verb": verb, "id": broadcast.pk},
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
            text = gettext("Broadcast #%(id)s: %(reason)s") % {"id": broadcast.pk, "reason": exc.message}
            level = messages.ERROR
        self.message_user(request, text, level)
        return HttpResponseRedirect(self._change_url(broadcast.pk))

    @action(description=_("Send to me first"), url_path="preview", permissions=["send"], icon="visibility")
    def preview(self, request: HttpRequest, object_id) -> HttpResponse:
        def lines(b: Broadcast) -> list[str]:
            from django.conf import settings

            ids = ", ".join(str(i) for i in settings.ADMIN_IDS) or gettext("nobody: ADMIN_IDS is empty")
            return [gettext("It goes to the operators' Telegram ids (ADMIN_IDS): %(ids)s.") % {"ids": ids}]

        def perform(b: Broadcast):
            result = service.preview(broadcast_id=b.pk)
            parts = []
            if result.sent:
                parts.append(gettext("sent to %(ids)s") % {"ids": ", ".join(map(str, result.sent))})
            parts += [
                gettext("not sent to %(id)s: %(reason)s") % {"id": chat_id, "reason": reason}
                for chat_id, reason in result.failed.items()
            ]
            text = gettext("Preview of #%(id)s: %(result)s") % {"id": b.pk, "result": "; ".join(parts)}
            return text, messages.SUCCESS if result.sent else messages.ERROR

        return self._do(request, object_id, pgettext("broadcast action", "Preview"), lines, perform)

    @action(description=_("Start…"), url_path="start", permissions=["send"], icon="send")
    def start(self, request: HttpRequest, object_id) -> HttpResponse:
        def lines(b: Broadcast) -> list[str]:
            count = selectors.audience_count(broadcast=b)
            out = [gettext("Recipients now: %(count)s.") % {"count": count}]
            if b.send_at and b.send_at > timezone.now():
                out.append(gettext("It will be sent at %(time)s.") % {"time": _when(b.send_at)})
            else:
                out.append(gettext("It will be sent now."))
            if b.allow_paid_broadcast:
                stars = selectors.paid_cost_stars(recipients=count)
                out.append(
                    gettext("Paid broadcast: about %(stars)s Stars from the bot's balance (0.1 ⭐ per message).")
                    % {"stars": stars}
                )
            if b.status != Broadcast.Status.DRAFT:
                out.append(
                    gettext("Its status is “%(status)s”: it cannot be started again.")
                    % {"status": b.get_status_display()}
                )
            return out

        def perform(b: Broadcast):
            started = service.start(broadcast_id=b.pk, by=request.user.get_username())
            if started.status == Broadcast.Status.SCHEDULED:
                text = gettext("Broadcast #%(id)s is scheduled for %(time)s.") % {
                    "id": b.pk,
                    "time": _when(started.send_at),
                }
                return text, messages.SUCCESS
            return gettext("Broadcast #%(id)s is being sent.") % {"id": b.pk}, messages.SUCCESS

        return self._do(request, object_id, pgettext("broadcast action", "Start"), lines, perform)

    def _transition(self, request, object_id, verb: str, func, done: str, nothing: str) -> HttpResponse:
        """`done`: the message when it worked, `nothing` when it did not apply (%(id)s: the broadcast,
        %(status)s: its status)."""

        def perform(b: Broadcast):
            if func(broadcast_id=b.pk):
                return done % {"id": b.pk}, messages.SUCCESS
            return nothing % {"id": b.pk, "status": b.get_status_display()}, messages.WARNING

        def lines(b: Broadcast) -> list[str]:
            return [gettext("Its status now: “%(status)s”.") % {"status": b.get_status_display()}]

        return self._do(request, object_id, verb, lines, perform)

    @action(
        description=pgettext_lazy("broadcast action", "Pause"), url_path="pause", permissions=["send"], icon="pause"
    )
    def pause(self, request: HttpRequest, object_id) -> HttpResponse:
        return self._transition(
            request,
            object_id,
            pgettext("broadcast action", "Pause"),
            service.pause,
            gettext("Broadcast #%(id)s is paused."),
            gettext("Broadcast #%(id)s: its status is “%(status)s”, nothing to pause."),
        )

    @action(
        description=pgettext_lazy("broadcast action", "Resume"),
        url_path="resume",
        permissions=["send"],
        icon="play_arrow",
    )
    def resume(self, request: HttpRequest, object_id) -> HttpResponse:
        return self._transition(
            request,
            object_id,
            pgettext("broadcast action", "Resume"),
            service.resume,
            gettext("Broadcast #%(id)s is being sent again."),
            gettext("Broadcast #%(id)s: its status is “%(status)s”, nothing to resume."),
        )

    @action(
        description=pgettext_lazy("broadcast action", "Cancel"), url_path="cancel", permissions=["send"], icon="cancel"
    )
    def cancel(self, request: HttpRequest, object_id) -> HttpResponse:
        return self._transition(
            request,
            object_id,
            pgettext("broadcast action", "Cancel"),
            service.cancel,
            gettext("Broadcast #%(id)s is cancelled."),
            gettext("Broadcast #%(id)s: its status is “%(status)s”, nothing to cancel."),
        )

    # --- bulk actions on the list -------------------------------------------------------------------
    def _bulk(self, request: HttpRequest, queryset: QuerySet, func, done: str) -> None:
        """`done`: the message when something changed, with %(ids)s for the broadcasts."""
        changed = [f"#{pk}" for pk in queryset.values_list("pk", flat=True) if func(broadcast_id=pk)]
        if changed:
            self.message_user(request, done % {"ids": ", ".join(changed)}, messages.SUCCESS)
        else:
            self.message_user(request, gettext("Nothing changed."), messages.WARNING)

    @action(description=_("Pause selected broadcasts"), permissions=["send"], icon="pause")
    def pause_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._bulk(request, queryset, service.pause, gettext("Paused: %(ids)s."))

    @action(description=_("Resume selected broadcasts"), permissions=["send"], icon="play_arrow")
    def resume_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._bulk(request, queryset, service.resume, gettext("Resumed: %(ids)s."))

    @action(description=_("Cancel selected broadcasts"), permissions=["send"], icon="cancel")
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._bulk(request, queryset, service.cancel, gettext("Cancelled: %(ids)s."))


def _when(moment) -> str:
    """A time as the operator reads it: local, with the zone."""
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M %Z}"


def progress_text(p: selectors.Progress | None) -> str:
    """One line of a broadcast's progress, in the admin's language."""
    if p is None:
        return "-"
    return gettext(
        "%(status)s: %(delivered)s delivered, %(blocked)s blocked, %(failed)s failed, %(unknown)s unknown, "
        "%(pending)s pending (of %(total)s)"
    ) % {
        "status": Broadcast.Status(p.status).label if p.status in Broadcast.Status.values else p.status,
        "delivered": p.delivered,
        "blocked": p.blocked,
        "failed": p.failed,
        "unknown": p.unknown,
        "pending": p.pending + p.sending,
        "total": p.total,
    }
