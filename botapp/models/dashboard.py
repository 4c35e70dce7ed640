"""The dashboard's daily rollups (kept by a beat task; read by botapp.selectors)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class DashboardDay(models.Model):
    """A day whose dashboard rollups (the three Daily* tables below) are built; see
    botapp/services/rollups.py. The dashboard computes the days without a row here live."""

    day = models.DateField(_("day"), primary_key=True)
    built_at = models.DateTimeField(_("built"))
    active_users = models.PositiveIntegerField(
        _("active users"), default=0, help_text=_("Distinct users active on the day.")
    )

    class Meta:
        verbose_name = _("dashboard day")
        verbose_name_plural = _("dashboard days")

    def __str__(self) -> str:
        return f"rollups of {self.day}"


class DailyLedger(models.Model):
    """Dashboard rollup: the ledger of one day by kind, bucket and the generation's model."""

    day = models.DateField(_("day"))
    kind = models.CharField(_("kind"), max_length=20)
    bucket = models.CharField(_("balance bucket"), max_length=8)
    ai_model_id = models.BigIntegerField(_("AI model ID"), null=True)
    rows = models.PositiveIntegerField(_("rows"))
    amount = models.DecimalField(_("amount"), max_digits=16, decimal_places=2)

    class Meta:
        verbose_name_plural = _("daily ledger totals")
        verbose_name = _("daily ledger total")
        indexes = [models.Index(fields=["day"], name="dailyledger_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.kind}/{self.bucket} model {self.ai_model_id}: {self.amount}"


class DailyGenerations(models.Model):
    """Dashboard rollup: the generation requests made on one day by model, status and error code;
    for the succeeded ones the images or video seconds made, what Google charged for them (at the
    model's cost by resolution when the day was built) and a histogram of the time to result."""

    day = models.DateField(_("day"))
    ai_model_id = models.BigIntegerField(_("AI model ID"), null=True)
    status = models.CharField(_("status"), max_length=16)
    error_code = models.CharField(_("error code"), max_length=64, blank=True)
    requests = models.PositiveIntegerField(_("requests"))
    refunded = models.PositiveIntegerField(_("refunded"), default=0)
    units = models.PositiveBigIntegerField(_("units"), default=0, help_text=_("Images, or seconds of video, made."))
    cost_usd = models.DecimalField(
        _("provider cost, USD"),
        max_digits=16,
        decimal_places=6,
        default=0,
        help_text=_("Google's cost of the units made: per request, the unit cost at its resolution × its units."),
    )
    durations = models.JSONField(
        _("durations"), default=dict, blank=True, help_text=_("{bucket's upper bound in s: count}")
    )

    class Meta:
        verbose_name_plural = _("daily generations totals")
        verbose_name = _("daily generations total")
        indexes = [models.Index(fields=["day"], name="dailygen_day")]

    def __str__(self) -> str:
        return f"{self.day} model {self.ai_model_id} {self.status}: {self.requests}"


class DailyActiveUser(models.Model):
    """Dashboard rollup: a user who interacted with the bot on a day (one row per user and day)."""

    day = models.DateField(_("day"))
    user_id = models.BigIntegerField(_("user ID"))

    class Meta:
        verbose_name_plural = _("daily active users")
        verbose_name = _("daily active user")
        constraints = [models.UniqueConstraint(fields=["day", "user_id"], name="dailyactive_day_user")]

    def __str__(self) -> str:
        return f"{self.day}: user {self.user_id}"
