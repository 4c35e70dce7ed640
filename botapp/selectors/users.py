"""The user's row that every update reads: the profile, the settings and the balance in one prepared
SELECT (botapp/selectors/prepared.py; the user middleware's read, bench/updates.py)."""

from __future__ import annotations

from typing import Any

from botapp.models import TgUser
from botapp.selectors.prepared import Prepared

USER_COLUMNS = (
    "id",
    "telegram_id",
    "username",
    "first_name",
    "last_name",
    "language_code",
    "is_premium",
    "is_banned",
    "bot_blocked",
    "last_seen_at",
    "referral_code",
    "xp",
    "level",
    "created_at",
    "settings__language",
    "settings__default_image_model_id",
    "settings__default_video_model_id",
    "settings__aspect_ratio",
    "settings__video_duration",
    "settings__video_resolution",
    "settings__send_as_file",
    "settings__notifications",
    "balance__balance",
    "balance__bonus_balance",
)

_USER_ROW = Prepared(
    lambda telegram_id: TgUser.objects.filter(telegram_id=telegram_id).order_by().values_list(*USER_COLUMNS)[:1],
    telegram_id=int,
)


def user_row(*, telegram_id: int) -> dict[str, Any] | None:
    """The user's row by Telegram id (columns: USER_COLUMNS; a missing settings or balance row gives
    None in its columns), or None for a user not registered yet."""
    rows = _USER_ROW.rows(telegram_id=telegram_id)
    return dict(zip(USER_COLUMNS, rows[0], strict=True)) if rows else None
