"""Generations: the generation requests, read-only, with the operator's refund."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import (
    ChoicesDropdownFilter,
    FieldTextFilter,
    RangeDateTimeFilter,
    RelatedDropdownFilter,
)
from unfold.decorators import action, display

from botapp.admin import media
from botapp.admin.base import (
    MAX_LISTED,
    STATUS_LABELS,
    ExactIdSearchMixin,
    LinkedTransactionInline,
    ReadOnlyAdminMixin,
    csv_response,
    format_duration,
    listing,
)
from botapp.models import (
    GenRequest,
    Transaction,
)
from botapp.redaction import redact
from botapp.services.exceptions import DomainError
from botapp.services.generation import GenerationService


class GenRequestTransactionInline(LinkedTransactionInline):
    fk_name = "gen_request"


# --- money and generations -----------------------------------------------------------------------
class RefundedFilter(admin.SimpleListFilter):
    title = _("refunded")
    parameter_name = "refunded"

    def lookups(self, request, model_admin):
        return (("yes", _("Yes")), ("no", _("No")))

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
        (
            _("Request"),
            {"fields": ("prompt", "negative_prompt", "params_display", "input_images_display", "idempotency_key")},
        ),
        (_("Result"), {"fields": ("results_display", "error_code", "error_text", "provider_operation_id")}),
        (_("Telegram"), {"fields": ("chat_id", "status_message_id")}),
        (
            _("Timeline"),
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

    readonly_fields = ("params_display", "input_images_display", "results_display", "error_text")

    def has_refund_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("botapp.change_genrequest")

    # -- result files (botapp.admin.media) --
    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.result_file_view)
        return [
            path("<path:object_id>/result/<int:index>/", view, name="botapp_genrequest_result"),
            *super().get_urls(),
        ]

    def result_file_view(self, request: HttpRequest, object_id: str, index: int) -> HttpResponse:
        """A result file streamed from storage (staff with the view permission on generations only)."""
        gen = self.get_object(request, object_id)
        if gen is None:
            raise Http404("no such generation")
        if not self.has_view_permission(request, gen):
            raise PermissionDenied
        return media.serve_result(request, gen, index)

    @display(description=_("Results"))
    def results_display(self, obj: GenRequest) -> str:
        return media.results_block(obj)

    @display(description=_("Parameters"))
    def params_display(self, obj: GenRequest) -> str:
        return media.params_block(obj.params)

    @display(description=_("Input images"))
    def input_images_display(self, obj: GenRequest) -> str:
        return media.input_images_block(obj.input_images)

    @display(description=_("Model"), ordering="model")
    def model_display(self, obj: GenRequest) -> str:
        return str(obj.ai_model) if obj.ai_model_id else obj.model

    @display(description=_("Status"), ordering="status", label=STATUS_LABELS)
    def status_badge(self, obj: GenRequest) -> tuple[str, str]:
        return obj.status, obj.get_status_display()

    @display(description=_("Duration"))
    def duration(self, obj: GenRequest) -> str:
        start = obj.started_at or obj.created_at
        if obj.finished_at is None or start is None:
            return "-"
        return format_duration(obj.finished_at - start)

    @display(description=_("Refunded"), boolean=True, ordering="refunded_at")
    def refunded(self, obj: GenRequest) -> bool:
        return obj.refunded_at is not None

    @display(description=_("Error message"))
    def error_text(self, obj: GenRequest) -> str:
        """Redacted again on display: a row stored before redaction existed may hold a secret."""
        return redact(obj.error_message) or "-"

    @action(description=_("Refund selected generations"), permissions=["refund"], icon="undo")
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
                refunded.append(gettext("%(label)s (%(amount)s tokens)") % {"label": label, "amount": result.amount})
                self.log_change(
                    request,
                    gen,
                    gettext("Refunded %(amount)s tokens: %(reason)s") % {"amount": result.amount, "reason": reason},
                )
        if refunded:
            self.message_user(request, gettext("Refunded %(list)s.") % {"list": listing(refunded)}, messages.SUCCESS)
        if already:
            self.message_user(
                request,
                gettext("Already refunded, nothing changed: %(list)s.") % {"list": listing(already)},
                messages.WARNING,
            )
        if free:
            self.message_user(
                request, gettext("Nothing was charged for %(list)s.") % {"list": listing(free)}, messages.WARNING
            )
        for line in refused[:MAX_LISTED]:
            self.message_user(request, gettext("Refund refused for %(line)s") % {"line": line}, messages.ERROR)
        if len(refused) > MAX_LISTED:
            self.message_user(
                request,
                gettext("… and %(count)d more refused.") % {"count": len(refused) - MAX_LISTED},
                messages.ERROR,
            )

    @action(description=_("Export selected to CSV"), permissions=["view"], icon="download")
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
