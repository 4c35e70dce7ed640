"""The snapshots the bot's handlers get from the bridge: frozen, cache-safe copies of what the ORM
holds (a user, a model of the catalogue, a balance...), so no handler ever touches a model instance."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from botapp import pricing
from botapp.capabilities import Capabilities
from botapp.models import AIModel, Language, TgUser, UserSettings
from botapp.selectors.users import USER_COLUMNS
from botapp.services import levels, users
from botapp.services.generation import UserStats


@dataclass(frozen=True, slots=True)
class UserContext:
    """What every handler knows about the user: loaded by the user middleware with one SELECT."""

    id: int
    telegram_id: int
    first_name: str
    username: str
    language: str
    referral_code: str
    is_banned: bool
    is_new: bool
    xp: int = 0
    level: int = 1
    created_at: datetime | None = None
    default_image_model_id: int | None = None
    default_video_model_id: int | None = None
    aspect_ratio: str = "1:1"
    video_duration: int = 8
    video_resolution: str = "720p"
    send_as_file: bool = False
    notifications: bool = True
    # The balance as read with the user at the start of the update: for screens that only show it
    # (the main menu); what moves money reads it again.
    balance: BalanceView | None = None

    @property
    def display_name(self) -> str:
        return self.first_name or (f"@{self.username}" if self.username else str(self.telegram_id))

    @classmethod
    def from_row(cls, row: dict[str, Any], *, is_new: bool) -> UserContext:
        """From `selectors.users.user_row` (the user middleware's read)."""
        base: dict[str, Any] = {
            "id": row["id"],
            "telegram_id": row["telegram_id"],
            "first_name": row["first_name"],
            "username": row["username"],
            "referral_code": row["referral_code"],
            "is_banned": row["is_banned"],
            "is_new": is_new,
            "xp": row["xp"],
            "level": row["level"],
            "created_at": row["created_at"],
        }
        if row["balance__balance"] is not None:
            base["balance"] = BalanceView(row["balance__balance"], row["balance__bonus_balance"])
        language = row["settings__language"]
        if language is None:  # no settings row
            return cls(language=users.language_from_code(row["language_code"]), **base)
        return cls(
            language=language if language in Language.values else Language.RU,
            default_image_model_id=row["settings__default_image_model_id"],
            default_video_model_id=row["settings__default_video_model_id"],
            aspect_ratio=row["settings__aspect_ratio"],
            video_duration=row["settings__video_duration"],
            video_resolution=row["settings__video_resolution"],
            send_as_file=row["settings__send_as_file"],
            notifications=row["settings__notifications"],
            **base,
        )

    @classmethod
    def from_user(cls, user: TgUser, *, is_new: bool) -> UserContext:
        """From a user with its settings loaded (after a settings change), as `from_row` reads it;
        the balance is not loaded here, so it is left unset (a screen that shows it reads it)."""
        try:
            prefs: UserSettings | None = user.settings
        except UserSettings.DoesNotExist:
            prefs = None

        def column(name: str) -> Any:
            if name.startswith("settings__"):
                return getattr(prefs, name.removeprefix("settings__")) if prefs is not None else None
            if name.startswith("balance__"):
                return None
            return getattr(user, name)

        return cls.from_row({name: column(name) for name in USER_COLUMNS}, is_new=is_new)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """An active AI model as the bot shows and validates it (a cache-safe copy of `AIModel`)."""

    id: int
    slug: str
    name: str
    emoji: str
    kind: str
    price: Decimal
    description: str
    description_en: str
    max_input_images: int
    max_prompt_length: int
    aspect_ratios: tuple[str, ...]
    durations: tuple[int, ...]
    resolutions: tuple[str, ...]
    default_params: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    caps: Capabilities = field(default_factory=Capabilities, hash=False, compare=False)
    pricing: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def quote(self, params: dict[str, Any], variants: int = 1) -> pricing.Quote:
        """What a request with these options costs (the same rule the charge uses)."""
        return pricing.quote(price=self.price, rule=self.pricing, kind=self.kind, params=params, variants=variants)

    @property
    def price_from(self) -> Decimal:
        """The cheapest single result over the model's resolutions and durations (the model list)."""
        options = [
            {"resolution": resolution, "duration_seconds": seconds, "generate_audio": audio}
            for resolution in (self.caps.resolutions or (None,))
            for seconds in (self.caps.durations_for(resolution=resolution) or (None,))
            for audio in ((True, False) if self.caps.audio else (None,))
        ]
        return min(self.quote(params).total for params in options)

    @property
    def price_varies(self) -> bool:
        return bool(self.pricing) or self.caps.max_variants > 1

    @property
    def label(self) -> str:
        return f"{self.emoji} {self.name}".strip()

    def describe(self, lang: str) -> str:
        return (self.description_en or self.description) if lang == Language.EN else self.description

    @classmethod
    def from_model(cls, model: AIModel) -> ModelInfo:
        return cls(
            id=model.pk,
            slug=model.slug,
            name=model.name,
            emoji=model.emoji,
            kind=model.kind,
            price=model.price,
            description=model.description,
            description_en=model.description_en,
            max_input_images=model.max_input_images,
            max_prompt_length=model.max_prompt_length,
            aspect_ratios=tuple(model.aspect_ratios),
            durations=tuple(model.durations),
            resolutions=tuple(model.resolutions),
            default_params=dict(model.default_params or {}),
            caps=model.caps,
            pricing=dict(model.pricing or {}),
        )


@dataclass(frozen=True, slots=True)
class BalanceView:
    balance: Decimal
    bonus: Decimal

    @property
    def total(self) -> Decimal:
        return self.balance + self.bonus


@dataclass(frozen=True, slots=True)
class LedgerLine:
    """One operation of the ledger (its main and bonus rows summed)."""

    kind: str
    amount: Decimal
    created_at: datetime
    model_label: str = ""
    request_id: int | None = None
    promocode: str = ""


@dataclass(frozen=True, slots=True)
class ProfileView:
    progress: levels.LevelProgress
    stats: UserStats
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ReferrerInfo:
    telegram_id: int
    name: str
    language: str
    notifications: bool


@dataclass(frozen=True, slots=True)
class PendingPromo:
    code: str
    kind: str
    value: Decimal
