"""A generation request and its life (the engine moves it; GenerationService charges and refunds it)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from botapp.models.catalogue import AIModel
from botapp.models.common import money_field
from botapp.models.users import TgUser


class GenRequest(models.Model):
    class Status(models.TextChoices):
        CREATED = "created", _("Created")
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    IN_FLIGHT = (Status.CREATED, Status.QUEUED, Status.RUNNING)
    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    user = models.ForeignKey(TgUser, verbose_name=_("user"), on_delete=models.CASCADE, related_name="gen_requests")
    ai_model = models.ForeignKey(
        AIModel, verbose_name=_("AI model"), null=True, on_delete=models.PROTECT, related_name="requests"
    )
    model = models.CharField(_("model code"), max_length=64, help_text=_("Legacy: the model slug as text."))
    kind = models.CharField(_("kind"), max_length=8, choices=AIModel.Kind.choices, default=AIModel.Kind.IMAGE)
    prompt = models.TextField(_("prompt"))
    negative_prompt = models.TextField(_("negative prompt"), blank=True)
    input_images = models.JSONField(
        _("input images"),
        default=list,
        blank=True,
        help_text=_("[{file_id, file_unique_id, mime_type, size}] from Telegram."),
    )
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    user_prompt = models.TextField(
        _("user's description"), blank=True, help_text=_("What the user typed, before a style wrapped it.")
    )
    style = models.ForeignKey(
        "botapp.PromptStyle",
        verbose_name=_("style"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="requests",
    )
    variants = models.PositiveSmallIntegerField(_("variants"), default=1)
    refunded_variants = models.PositiveSmallIntegerField(
        _("variants refunded"), default=0, help_text=_("Variants that failed or were blocked and were refunded.")
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.CREATED)
    price = money_field(verbose_name=_("price"), help_text=_("Tokens charged."))
    idempotency_key = models.CharField(_("idempotency key"), max_length=128, unique=True, null=True, blank=True)
    provider_operation_id = models.CharField(_("provider operation ID"), max_length=255, blank=True, db_index=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    results = models.JSONField(
        _("results"), default=list, blank=True, help_text=_("[{kind, path, mime_type, tg_file_id, width, height}]")
    )
    error_code = models.CharField(_("error code"), max_length=64, blank=True)
    error_message = models.TextField(_("error message"), blank=True)
    chat_id = models.BigIntegerField(_("chat ID"), null=True, blank=True)
    status_message_id = models.BigIntegerField(_("status message ID"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    queued_at = models.DateTimeField(_("queued"), null=True, blank=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    submitted_at = models.DateTimeField(
        _("sent to the provider"),
        null=True,
        blank=True,
        help_text=_("From this moment the provider charges for the work: cancelling is refused."),
    )
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    deadline_at = models.DateTimeField(_("deadline"), null=True, blank=True)
    next_poll_at = models.DateTimeField(_("next poll"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    refunded_at = models.DateTimeField(_("refunded"), null=True, blank=True)
    xp_awarded = models.PositiveIntegerField(
        _("XP awarded"),
        default=0,
        help_text=_("XP this request gave when it succeeded; taken back (once) if it is refunded."),
    )

    class Meta:
        verbose_name_plural = _("generation requests")
        verbose_name = _("generation request")
        indexes = [
            models.Index(fields=["user", "status"], name="genreq_user_status"),
            models.Index(fields=["user", "-created_at"], name="genreq_user_recent"),
            models.Index(fields=["status", "deadline_at"], name="genreq_status_deadline"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="genreq_price_non_negative"),
            models.CheckConstraint(condition=Q(variants__gte=1, variants__lte=4), name="genreq_variants_1_4"),
            models.CheckConstraint(
                condition=Q(refunded_variants__lte=models.F("variants")), name="genreq_refunded_variants_le_variants"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.model} [{self.status}]"

    @property
    def charge_key(self) -> str:
        return f"gen:{self.pk}:charge"

    @property
    def refund_key(self) -> str:
        return f"gen:{self.pk}:refund"

    @property
    def partial_refund_key(self) -> str:
        """The one refund of the variants that failed (an album delivered in part)."""
        return f"gen:{self.pk}:refund-variants"
