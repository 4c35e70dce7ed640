"""Users: the Telegram user, their balance (a cache of the ledger) and their settings."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from django.utils.translation import gettext_lazy as _

from botapp.models.catalogue import AIModel
from botapp.models.common import Language, money_field, new_referral_code


class TgUser(models.Model):
    telegram_id = models.BigIntegerField(_("Telegram ID"), unique=True)
    username = models.CharField(_("username"), max_length=64, blank=True)
    first_name = models.CharField(_("first name"), max_length=128, blank=True)
    last_name = models.CharField(_("last name"), max_length=128, blank=True)
    language_code = models.CharField(_("Telegram language"), max_length=16, blank=True)
    is_premium = models.BooleanField(_("Telegram Premium"), default=False)
    is_banned = models.BooleanField(_("banned"), default=False, db_index=True)
    ban_reason = models.CharField(_("ban reason"), max_length=255, blank=True)
    bot_blocked = models.BooleanField(
        _("blocked the bot"), default=False, help_text=_("The user blocked the bot (403 on send).")
    )
    referral_code = models.CharField(_("referral code"), max_length=16, unique=True, default=new_referral_code)
    referred_by = models.ForeignKey(
        "self",
        verbose_name=_("referred by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="referrals",
    )
    level = models.PositiveIntegerField(_("level"), default=1)
    xp = models.PositiveIntegerField(_("XP"), default=0)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True, db_index=True)

    class Meta:
        verbose_name = _("Telegram user")
        verbose_name_plural = _("Telegram users")
        # Support finds a user by @username whatever the case (botapp.selectors.support).
        indexes = [models.Index(Upper("username"), name="tguser_username_upper")]

    def __str__(self) -> str:
        name = f"@{self.username}" if self.username else (self.first_name or "user")
        return f"{name} ({self.telegram_id})"

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)


class UserBalance(models.Model):
    user = models.OneToOneField(TgUser, verbose_name=_("user"), on_delete=models.CASCADE, related_name="balance")
    balance = money_field(verbose_name=_("balance"), help_text=_("Purchased tokens."))
    bonus_balance = money_field(verbose_name=_("bonus balance"), help_text=_("Bonus tokens (spent first)."))
    total_deposited = money_field(verbose_name=_("total deposited"))
    total_spent = money_field(verbose_name=_("total spent"))
    total_refunded = money_field(verbose_name=_("total refunded"))
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name_plural = _("balances")
        verbose_name = _("balance")
        constraints = [
            models.CheckConstraint(condition=Q(balance__gte=0), name="balance_non_negative"),
            models.CheckConstraint(condition=Q(bonus_balance__gte=0), name="bonus_balance_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.balance} + {self.bonus_balance} bonus"

    @property
    def total(self) -> Decimal:
        return self.balance + self.bonus_balance


class UserSettings(models.Model):
    user = models.OneToOneField(TgUser, verbose_name=_("user"), on_delete=models.CASCADE, related_name="settings")
    language = models.CharField(_("language"), max_length=2, choices=Language.choices, default=Language.RU)
    default_image_model = models.ForeignKey(
        AIModel,
        verbose_name=_("default image model"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    default_video_model = models.ForeignKey(
        AIModel,
        verbose_name=_("default video model"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    aspect_ratio = models.CharField(_("aspect ratio"), max_length=8, default="1:1")
    video_duration = models.PositiveSmallIntegerField(_("video duration"), default=8)
    video_resolution = models.CharField(_("video resolution"), max_length=8, default="720p")
    send_as_file = models.BooleanField(_("send as file"), default=False)
    notifications = models.BooleanField(_("notifications"), default=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("user settings")
        verbose_name_plural = _("user settings")

    def __str__(self) -> str:
        return f"settings of {self.user_id}"
