"""Levels and XP: users gain XP from the tokens their generations spend; levels are rows of `Level`.

XP is given when a generation succeeds (`award_xp`) and taken back when that generation is refunded
after all (`revoke_xp`, called by GenerationService.refund in the refund's transaction, once per
request: `GenRequest.xp_awarded` is zeroed by a conditional UPDATE). Top-up perks follow the XP, so a
refunded generation must not leave any behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, OuterRef, Subquery

from botapp.models import Level, TgUser


@dataclass(frozen=True)
class LevelProgress:
    level: int
    name: str
    name_en: str
    xp: int
    level_xp: int  # XP at which the current level started
    next_level_xp: int | None  # None at the top level
    topup_bonus_percent: Decimal

    @property
    def fraction(self) -> float:
        if self.next_level_xp is None:
            return 1.0
        span = self.next_level_xp - self.level_xp
        return max(0.0, min(1.0, (self.xp - self.level_xp) / span)) if span else 1.0

    def bar(self, width: int = 10) -> str:
        filled = round(self.fraction * width)
        return "▰" * filled + "▱" * (width - filled)


@dataclass(frozen=True)
class LevelUp:
    user_id: int
    old_level: int
    new_level: int
    xp: int


def xp_for_tokens(tokens: Decimal) -> int:
    return int((tokens * settings.XP_PER_TOKEN).to_integral_value(rounding=ROUND_FLOOR))


def _levels() -> list[Level]:
    return list(Level.objects.order_by("xp_required"))


def level_for_xp(xp: int, levels: list[Level] | None = None) -> Level | None:
    current = None
    for level in levels if levels is not None else _levels():
        if xp >= level.xp_required:
            current = level
    return current


def progress(*, user: TgUser) -> LevelProgress:
    levels = _levels()
    current = level_for_xp(user.xp, levels)
    following = [lv for lv in levels if lv.xp_required > user.xp]
    return LevelProgress(
        level=current.number if current else user.level,
        name=current.name if current else "",
        name_en=(current.name_en or current.name) if current else "",
        xp=user.xp,
        level_xp=current.xp_required if current else 0,
        next_level_xp=following[0].xp_required if following else None,
        topup_bonus_percent=current.topup_bonus_percent if current else Decimal("0"),
    )


def award_xp(*, user_id: int, tokens: Decimal) -> LevelUp | None:
    """Add XP for `tokens` spent; return a LevelUp when the user crossed a threshold.

    Two statements in the common case, and no savepoint (it runs inside mark_succeeded's transaction on
    every finished generation): the XP is added (which locks the row), then read back with the level it
    reaches; a third writes the level only when a threshold was crossed."""
    xp = xp_for_tokens(tokens)
    if xp <= 0:
        return None
    reached = Level.objects.filter(xp_required__lte=OuterRef("xp")).order_by("-xp_required", "-number")
    with transaction.atomic(savepoint=False):
        if not TgUser.objects.filter(pk=user_id).update(xp=F("xp") + xp):
            return None
        total, old_level, number = (
            TgUser.objects.filter(pk=user_id).values_list("xp", "level", Subquery(reached.values("number")[:1])).get()
        )
        if number is None or number <= old_level:
            return None
        TgUser.objects.filter(pk=user_id).update(level=number)
    return LevelUp(user_id=user_id, old_level=old_level, new_level=number, xp=total)


def revoke_xp(*, user_id: int, xp: int) -> int:
    """Take back `xp` (a refunded generation's), never below zero, and lower the level to the one the
    remaining XP reaches (a level is never raised here). Returns the user's level afterwards."""
    with transaction.atomic():
        user = TgUser.objects.select_for_update().only("pk", "xp", "level").get(pk=user_id)
        if xp <= 0:
            return user.level
        remaining = max(0, user.xp - xp)
        reached = level_for_xp(remaining)
        new_level = min(user.level, reached.number) if reached is not None else user.level
        TgUser.objects.filter(pk=user_id).update(xp=remaining, level=new_level)
        return new_level
