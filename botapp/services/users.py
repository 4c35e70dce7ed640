"""Users: register or refresh a Telegram user on every update (with their balance and settings rows)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from botapp.models import Language, TgUser, UserBalance, UserSettings
from botapp.services.exceptions import UserNotFound

LAST_SEEN_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class TelegramProfile:
    telegram_id: int
    username: str = ""
    first_name: str = ""
    last_name: str = ""
    language_code: str = ""
    is_premium: bool = False


def language_from_code(language_code: str | None) -> str:
    """Russian by default; English for clients set to English (and other non-Russian-family locales)."""
    code = (language_code or "").lower().split("-")[0]
    if code in ("", "ru", "uk", "be", "kk", "uz", "ky", "tg", "hy", "az", "ka"):
        return Language.RU
    return Language.EN


def upsert_user(profile: TelegramProfile) -> tuple[TgUser, bool]:
    """Create the user (with balance and settings) at first contact, or refresh the profile.

    Returns (user, created). Writes only when something changed or last_seen is over a minute old,
    so a menu click costs one SELECT in the common case.
    """
    now = timezone.now()
    user = TgUser.objects.select_related("settings").filter(telegram_id=profile.telegram_id).first()
    if user is None:
        try:
            with transaction.atomic():
                user = TgUser.objects.create(
                    telegram_id=profile.telegram_id,
                    username=profile.username or "",
                    first_name=profile.first_name or "",
                    last_name=profile.last_name or "",
                    language_code=profile.language_code or "",
                    is_premium=profile.is_premium,
                    last_seen_at=now,
                )
                UserBalance.objects.create(user=user)
                UserSettings.objects.create(user=user, language=language_from_code(profile.language_code))
                return TgUser.objects.select_related("settings").get(pk=user.pk), True
        except IntegrityError:  # a concurrent first update created it
            user = TgUser.objects.select_related("settings").get(telegram_id=profile.telegram_id)
    changes = {
        name: value
        for name, value in (
            ("username", profile.username or ""),
            ("first_name", profile.first_name or ""),
            ("last_name", profile.last_name or ""),
            ("language_code", profile.language_code or ""),
            ("is_premium", profile.is_premium),
        )
        if getattr(user, name) != value
    }
    if user.bot_blocked:
        changes["bot_blocked"] = False  # they wrote to us, so they unblocked the bot
    if changes or user.last_seen_at is None or now - user.last_seen_at > LAST_SEEN_RESOLUTION:
        changes["last_seen_at"] = now
        TgUser.objects.filter(pk=user.pk).update(**changes)
        for name, value in changes.items():
            setattr(user, name, value)
    return user, False


def get_user(*, telegram_id: int) -> TgUser:
    user = TgUser.objects.select_related("settings", "balance").filter(telegram_id=telegram_id).first()
    if user is None:
        raise UserNotFound()
    return user


def set_ban(*, user_id: int, banned: bool, reason: str = "") -> bool:
    return bool(TgUser.objects.filter(pk=user_id).update(is_banned=banned, ban_reason=reason if banned else ""))


def mark_bot_blocked(*, telegram_id: int) -> None:
    TgUser.objects.filter(telegram_id=telegram_id, bot_blocked=False).update(bot_blocked=True)
