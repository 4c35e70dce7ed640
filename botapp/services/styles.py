"""Prompt styles: the operator's presets (admin: PromptStyle) that wrap the user's description.

A style's `prompt_template` holds `{prompt}` exactly once; the final prompt is the template with
`{prompt}` replaced by the description: a plain replace, never `str.format`, so no other brace in
a stored template can break a generation (and the admin refuses such templates anyway).

- `validate_template`: the admin form's check (a Django ValidationError, messages in gettext);
- `active_styles(kind)`: the styles the options screen offers, cached for a few seconds like the
  model catalogue (`STYLES_TTL`), as frozen `StyleInfo` snapshots;
- `final_prompt`: the description with the style applied, refused (StyledPromptTooLong) when it
  no longer fits the model;
- `example_to_send` / `remember_example`: a style's example image for the bot (its bytes the first
  time, then Telegram's file_id, remembered in the cache per image);
- `check_active`: the check at Generate (GenerationService.create_request): the style must still be
  active and apply to the model's kind, else StyleUnavailable, before anything is charged.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from botapp.models import Language, PromptStyle
from botapp.services.exceptions import DomainError, PromptTooLong

PLACEHOLDER = "{prompt}"
STYLES_TTL = 10.0  # seconds an admin change of the styles takes to reach the bot
MAX_TEMPLATE_OVERHEAD = 1000  # characters a template may add to the description
EXAMPLE_FILE_ID_TTL = 30 * 24 * 3600  # seconds the bot remembers Telegram's file_id of an example image


class StyleUnavailable(DomainError):
    """The chosen style was deactivated (or no longer applies to this kind of model)."""

    code = "style_unavailable"
    default_message = "This style is no longer available. Choose another one or none."


class StyledPromptTooLong(PromptTooLong):
    """The description fits the model, but not once the style's template wraps it."""

    code = "styled_prompt_too_long"
    default_message = (
        "With the style {style} the prompt is {length} characters, at most {limit}. "
        "Shorten the description or choose another style."
    )


@dataclass(frozen=True, slots=True)
class StyleInfo:
    """A cache-safe copy of an active PromptStyle."""

    id: int
    name: str
    name_en: str
    emoji: str
    template: str
    applies_to: str
    example: str  # the example image's storage name, "" when none

    def label(self, lang: str) -> str:
        name = (self.name_en or self.name) if lang == Language.EN else self.name
        return f"{self.emoji} {name}".strip()

    def applies(self, kind: str) -> bool:
        return self.applies_to in ("", kind)

    def apply(self, text: str) -> str:
        return apply_template(self.template, text)

    @classmethod
    def from_model(cls, style: PromptStyle) -> StyleInfo:
        return cls(
            id=style.pk,
            name=style.name,
            name_en=style.name_en,
            emoji=style.emoji,
            template=style.prompt_template,
            applies_to=style.applies_to,
            example=style.example_image.name if style.example_image else "",
        )


# --- templates ------------------------------------------------------------------------------------------
def apply_template(template: str, text: str) -> str:
    """The final prompt: the template with `{prompt}` replaced by the description (stripped)."""
    return template.replace(PLACEHOLDER, text.strip()).strip()


def validate_template(template: str) -> None:
    """The admin's check of a template: `{prompt}` exactly once, no other braces (a literal brace
    or another {placeholder} would be a template that str.format chokes on, and one nobody fills)."""
    count = template.count(PLACEHOLDER)
    if count == 0:
        raise ValidationError(_("The template must contain {prompt}: it is replaced by the user's description."))
    if count > 1:
        raise ValidationError(_("The template must contain {prompt} only once."))
    rest = template.replace(PLACEHOLDER, "")
    if "{" in rest or "}" in rest:
        raise ValidationError(
            _("Only {prompt} may be in braces: remove the other { and } characters (placeholders are not filled).")
        )
    if len(rest.strip()) > MAX_TEMPLATE_OVERHEAD:
        raise ValidationError(
            _("The template adds %(length)s characters to the description, at most %(limit)s.")
            % {"length": len(rest.strip()), "limit": MAX_TEMPLATE_OVERHEAD}
        )


def final_prompt(*, text: str, style: StyleInfo | None, limit: int, lang: str = "en") -> str:
    """The prompt the model gets; StyledPromptTooLong when the style pushes it over `limit`."""
    text = text.strip()
    if style is None:
        return text
    final = style.apply(text)
    if len(final) > limit:
        raise StyledPromptTooLong(length=len(final), limit=limit, style=style.label(lang))
    return final


# --- the catalogue of styles (cached) -------------------------------------------------------------------
_cache: tuple[float, tuple[StyleInfo, ...]] | None = None
_lock = threading.Lock()


def _all_active() -> tuple[StyleInfo, ...]:
    global _cache
    now = time.monotonic()
    cached = _cache
    if cached is not None and now - cached[0] < STYLES_TTL:
        return cached[1]
    with _lock:
        styles = tuple(StyleInfo.from_model(s) for s in PromptStyle.objects.filter(is_active=True))
        _cache = (now, styles)
    return styles


def clear_cache() -> None:
    global _cache
    _cache = None


def active_styles(kind: str) -> tuple[StyleInfo, ...]:
    """The active styles for a kind of model ("image" / "video"), in the admin's order."""
    return tuple(s for s in _all_active() if s.applies(kind))


def find_style(style_id: int | None, kind: str) -> StyleInfo | None:
    """An active style for this kind by id (from the cache), or None."""
    if not style_id:
        return None
    return next((s for s in active_styles(kind) if s.id == style_id), None)


def check_active(*, style_id: int, kind: str) -> PromptStyle:
    """At Generate: the style is still active and applies to this kind (a fresh query, not the
    cache), else StyleUnavailable."""
    style = PromptStyle.objects.filter(pk=style_id, is_active=True).first()
    if style is None or style.applies_to not in ("", kind):
        raise StyleUnavailable()
    return style


# --- example images ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Example:
    """What the bot sends as a style's example: Telegram's file_id when known, else the file's bytes."""

    key: str  # the cache key of the file_id (per style and image file: a new image gets a new key)
    label: str
    file_id: str | None
    data: bytes | None


def example_to_send(*, style_id: int, lang: str) -> Example | None:
    """The example image of an active style, or None (no such style, or no image)."""
    style = PromptStyle.objects.filter(pk=style_id, is_active=True).first()
    if style is None or not style.example_image:
        return None
    label = StyleInfo.from_model(style).label(lang)
    key = f"style-example:{style.pk}:{style.example_image.name}"
    file_id = cache.get(key)
    if file_id:
        return Example(key=key, label=label, file_id=file_id, data=None)
    with style.example_image.open("rb") as fh:
        return Example(key=key, label=label, file_id=None, data=fh.read())


def remember_example(*, key: str, file_id: str) -> None:
    cache.set(key, file_id, timeout=EXAMPLE_FILE_ID_TTL)
