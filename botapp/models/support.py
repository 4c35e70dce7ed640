"""Support: users' requests, the operators' messages to users, and the bot texts operators edit."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from botapp.models.users import TgUser


class SupportRequest(models.Model):
    """A user's message to support from the bot (/paysupport), forwarded to the operators with the
    user's recent payments; answered from the admin ("message a user")."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        ANSWERED = "answered", _("Answered")
        CLOSED = "closed", _("Closed")

    user = models.ForeignKey(TgUser, verbose_name=_("user"), on_delete=models.CASCADE, related_name="support_requests")
    topic = models.CharField(_("topic"), max_length=16, default="payment")
    text = models.TextField(_("text"))
    payments = models.JSONField(_("payments attached"), default=list, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("support request")
        verbose_name_plural = _("support requests")

    def __str__(self) -> str:
        return f"Support request #{self.pk} from {self.user_id} ({self.status})"


class SupportMessage(models.Model):
    """A message an operator wrote to one user from the admin, sent in the background
    (botapp.services.support, task `send_support_message`).

    pending -> sending (claimed by a conditional UPDATE, committed before the request goes out) -> sent,
    blocked (403: the user blocked the bot), failed (Telegram refused it, or it could not be sent) or
    unknown (the answer was lost: it may have arrived, so it is never sent again)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        BLOCKED = "blocked", _("Blocked the bot")
        FAILED = "failed", _("Failed")
        UNKNOWN = "unknown", _("Outcome unknown")

    user = models.ForeignKey(TgUser, verbose_name=_("user"), on_delete=models.CASCADE, related_name="support_messages")
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("operator"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    operator_name = models.CharField(
        _("operator login"), max_length=150, blank=True, help_text=_("Kept if the operator's account is deleted.")
    )
    text = models.TextField(_("text"), help_text=_("Telegram HTML, as the operator wrote it."))
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.PENDING)
    error = models.CharField(_("error"), max_length=255, blank=True)
    message_id = models.BigIntegerField(_("Telegram message ID"), null=True, blank=True)
    # One per user and submitted form: a form submitted twice (a double click) writes once.
    idempotency_key = models.CharField(_("idempotency key"), max_length=80, unique=True, null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    claimed_at = models.DateTimeField(_("claimed"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

    class Meta:
        verbose_name = _("support message")
        verbose_name_plural = _("support messages")
        indexes = [models.Index(fields=["user", "-created_at"], name="supportmsg_user_recent")]

    def __str__(self) -> str:
        return f"Support message #{self.pk} to {self.user_id} ({self.status})"


class BotText(models.Model):
    """A text of the bot the operator edits in the admin (e.g. the terms of service); an empty one
    falls back to the catalogue's default (botapp/locales)."""

    class Key(models.TextChoices):
        TERMS = "terms", _("Terms of service (/terms)")
        PAYSUPPORT = "paysupport", _("Payment support (/paysupport)")

    key = models.CharField(_("text"), max_length=32, choices=Key.choices, unique=True)
    text_ru = models.TextField(_("Russian"), blank=True, help_text=_("Telegram HTML. Empty: the default text."))
    text_en = models.TextField(_("English"), blank=True, help_text=_("Telegram HTML. Empty: the default text."))
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("bot text")
        verbose_name_plural = _("bot texts")

    def __str__(self) -> str:
        return str(self.get_key_display())
