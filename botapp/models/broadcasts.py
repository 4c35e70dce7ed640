"""Broadcasts and their per-recipient state (a conditional claim per recipient)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from botapp.models.common import Language
from botapp.models.users import TgUser


class Broadcast(models.Model):
    """A message to many users, sent in the background (botapp.services.broadcasts).

    The audience is a combination of segments (every field left empty means "anyone"); users who
    blocked the bot or are banned never receive it. When it starts, one `BroadcastRecipient` row per
    user is created (in batches), and each row is claimed by a conditional UPDATE before its send.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SCHEDULED = "scheduled", _("Scheduled")
        SENDING = "sending", _("Sending")
        PAUSED = "paused", _("Paused")
        DONE = "done", _("Done")
        CANCELLED = "cancelled", _("Cancelled")

    EDITABLE = (Status.DRAFT, Status.SCHEDULED)
    ACTIVE = (Status.SENDING, Status.PAUSED)

    class Paid(models.TextChoices):
        ANY = "", _("Anyone")
        PAID = "paid", _("Paid at least once")
        NEVER = "never", _("Never paid")

    class Screen(models.TextChoices):
        """A bot screen a button can open (values: botapp.callbacks.MenuAction)."""

        NONE = "", _("No screen")
        MAIN = "main", _("Main menu")
        IMAGE = "img", _("Create an image")
        VIDEO = "vid", _("Create a video")
        TOPUP = "top", _("Top up")
        BALANCE = "bal", _("Balance")
        PROMO = "promo", _("Promocode")
        INVITE = "inv", _("Invite friends")

    text = models.TextField(
        _("text"),
        help_text=_(
            "Telegram HTML: <b>, <i>, <u>, <s>, <a href>, <code>, <pre>, <blockquote>, "
            "<tg-spoiler>; escape other <, & as &lt; &amp;."
        ),
    )
    photo = models.ImageField(_("photo"), upload_to="broadcasts/", null=True, blank=True)
    photo_file_id = models.CharField(_("photo file ID"), max_length=255, blank=True, editable=False)
    button_text = models.CharField(_("button text"), max_length=64, blank=True)
    button_url = models.URLField(_("button URL"), blank=True)
    button_screen = models.CharField(
        _("button opens bot screen"), max_length=8, choices=Screen.choices, blank=True, default=""
    )
    # --- audience (combined with AND; empty = no condition) ---
    active_within_days = models.PositiveIntegerField(
        _("active within days"), null=True, blank=True, help_text=_("Seen by the bot within the last N days.")
    )
    paid = models.CharField(_("has paid"), max_length=8, choices=Paid.choices, blank=True, default="")
    has_balance = models.BooleanField(
        _("has balance"), default=False, help_text=_("Only users with tokens (purchased or bonus).")
    )
    language = models.CharField(_("language"), max_length=2, choices=Language.choices, blank=True, default="")
    level_min = models.PositiveIntegerField(_("level from"), null=True, blank=True)
    level_max = models.PositiveIntegerField(_("level to"), null=True, blank=True)
    never_generated = models.BooleanField(
        _("never generated"), default=False, help_text=_("Only users who never requested a generation.")
    )
    joined_after = models.DateTimeField(_("joined after"), null=True, blank=True)
    joined_before = models.DateTimeField(_("joined before"), null=True, blank=True)
    referred_only = models.BooleanField(
        _("referred only"), default=False, help_text=_("Only users invited by someone.")
    )
    # --- sending ---
    send_at = models.DateTimeField(_("send at"), null=True, blank=True, help_text=_("Empty: as soon as it is started."))
    allow_paid_broadcast = models.BooleanField(
        _("paid broadcast (up to 1000/s)"),
        default=False,
        help_text=_("Telegram's paid broadcasts: up to 1000 messages/s, 0.1 Star per message."),
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True)
    created_by = models.CharField(_("created by"), max_length=150, blank=True, editable=False)
    total = models.PositiveIntegerField(_("total"), default=0)
    delivered = models.PositiveIntegerField(_("delivered"), default=0)
    blocked = models.PositiveIntegerField(_("blocked"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)
    unknown = models.PositiveIntegerField(_("outcome unknown"), default=0)
    # Recipients are created in batches by user id; the last id done, and whether all are there.
    prepared_upto = models.BigIntegerField(_("prepared up to"), default=0, editable=False)
    prepared = models.BooleanField(_("prepared"), default=False, editable=False)
    # The one runner sending it now (a lease renewed while it runs; see services/broadcasts.py).
    runner_token = models.CharField(_("runner token"), max_length=32, blank=True, editable=False)
    runner_until = models.DateTimeField(_("runner lease until"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name_plural = _("broadcasts")
        verbose_name = _("broadcast")
        permissions = [("send_broadcast", "Can start, preview, pause, resume and cancel broadcasts")]

    def __str__(self) -> str:
        return f"Broadcast #{self.pk} ({self.status})"


class BroadcastRecipient(models.Model):
    """One user of a broadcast: pending -> sending (claimed, committed before the send) -> a result.

    A row left in `sending` by a runner that died has an unknown outcome: it is marked `unknown` and
    never sent again (the message may have arrived)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        BLOCKED = "blocked", _("Blocked the bot")
        FAILED = "failed", _("Failed")
        UNKNOWN = "unknown", _("Outcome unknown")

    broadcast = models.ForeignKey(
        Broadcast, verbose_name=_("broadcast"), on_delete=models.CASCADE, related_name="recipients"
    )
    user = models.ForeignKey(TgUser, verbose_name=_("user"), on_delete=models.CASCADE, related_name="+")
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.PENDING)
    # pending: not before this moment (flood control); sending: the runner that claimed it.
    claimed_until = models.DateTimeField(_("claimed until"), null=True, blank=True)
    claim_token = models.CharField(_("claim token"), max_length=32, blank=True)
    message_id = models.BigIntegerField(_("message ID"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=255, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

    class Meta:
        verbose_name_plural = _("broadcast recipients")
        verbose_name = _("broadcast recipient")
        constraints = [models.UniqueConstraint(fields=["broadcast", "user"], name="broadcast_recipient_once")]
        indexes = [models.Index(fields=["broadcast", "status", "id"], name="bcast_recipient_status")]

    def __str__(self) -> str:
        return f"#{self.broadcast_id} -> {self.user_id} ({self.status})"
