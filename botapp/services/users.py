"""Users: register or refresh a Telegram user on every update (with their balance and settings rows)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from botapp.models import Language, TgUser, UserBalance, UserSettings
from botapp.selectors.users import user_row
from botapp.services.exceptions import UserNotFound

LAST_SEEN_RESOLUTION = timedelta(minutes=1)
PROFILE_FIELDS = ("username", "first_name", "last_name", "language_code", "is_premium")


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


def profile_changes(*, stored: Mapping[str, Any], profile: TelegramProfile, now: datetime) -> dict[str, Any]:
    """What refreshing a registered user writes: the profile fields that changed, `bot_blocked` cleared
    (they wrote to us, so they unblocked the bot), and `last_seen_at` when anything changed or it is
    over a minute old. Empty when there is nothing to write (the common case of a menu click)."""
    changes = {
        name: value
        for name, value in (
            ("username", profile.username or ""),
            ("first_name", profile.first_name or ""),
            ("last_name", profile.last_name or ""),
            ("language_code", profile.language_code or ""),
            ("is_premium", profile.is_premium),
        )
        if stored[name] != value
    }
    if stored["bot_blocked"]:
        changes["bot_blocked"] = False
    last_seen = stored["last_seen_at"]
    if changes or last_seen is None or now - last_seen > LAST_SEEN_RESOLUTION:
        changes["last_seen_at"] = now
    return changes


def upsert_user(profile: TelegramProfile) -> tuple[TgUser, bool]:
    """Create the user (with balance and settings) at first contact, or refresh the profile.

    Returns (user, created). Writes only what `profile_changes` says.
    """
    now = timezone.now()
    try:
        user = TgUser.objects.select_related("settings").get(telegram_id=profile.telegram_id)
    except TgUser.DoesNotExist:
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
    stored = {name: getattr(user, name) for name in (*PROFILE_FIELDS, "bot_blocked", "last_seen_at")}
    changes = profile_changes(stored=stored, profile=profile, now=now)
    if changes:
        TgUser.objects.filter(pk=user.pk).update(**changes)
        for name, value in changes.items():
            setattr(user, name, value)
    return user, False


def refresh_user(profile: TelegramProfile) -> tuple[dict[str, Any], bool]:
    """Every update's user: (their row as `selectors.users.user_row` gives it, created).

    One prepared SELECT when the user is registered and nothing is to be written (a menu click);
    `upsert_user` and a second read otherwise (a first contact, a changed profile, once a minute).
    """
    row = user_row(telegram_id=profile.telegram_id)
    if row is not None and not profile_changes(stored=row, profile=profile, now=timezone.now()):
        return row, False
    _, created = upsert_user(profile)
    row = user_row(telegram_id=profile.telegram_id)
    if row is None:  # deleted between the two statements (an operator's erasure): a first contact again
        return refresh_user(profile)
    return row, created


def get_user(*, telegram_id: int) -> TgUser:
    user = TgUser.objects.select_related("settings", "balance").filter(telegram_id=telegram_id).first()
    if user is None:
        raise UserNotFound()
    return user


def set_ban(*, user_id: int, banned: bool, reason: str = "") -> bool:
    return bool(TgUser.objects.filter(pk=user_id).update(is_banned=banned, ban_reason=reason if banned else ""))


def mark_bot_blocked(*, telegram_id: int) -> None:
    TgUser.objects.filter(telegram_id=telegram_id, bot_blocked=False).update(bot_blocked=True)
