"""What the models share: the money field, the referral code, the languages."""

from __future__ import annotations

import secrets
from decimal import Decimal

from django.db import models

ZERO = Decimal("0.00")
REFERRAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def money_field(**kwargs) -> models.DecimalField:
    kwargs.setdefault("default", ZERO)
    return models.DecimalField(max_digits=12, decimal_places=2, **kwargs)


def new_referral_code() -> str:
    return "".join(secrets.choice(REFERRAL_ALPHABET) for _ in range(8))


class Language(models.TextChoices):
    RU = "ru", "Русский"
    EN = "en", "English"
