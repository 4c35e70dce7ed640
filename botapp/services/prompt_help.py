"""The "Improve my prompt" service: a Gemini text model rewrites the user's description for the chosen model.

Settings (config/settings.py): PROMPT_IMPROVE_ENABLED, PROMPT_IMPROVE_PRICE (tokens, may be 0),
PROMPT_IMPROVE_MODEL (a Gemini text model id), PROMPT_IMPROVE_PER_HOUR (rewrites per user and clock
hour; 0: no limit), PROMPT_IMPROVE_TIMEOUT_SECONDS.

- Where it runs (`backend`): Google (the Gemini API or Vertex AI, whichever has credentials, the
  default backend first) or, without credentials where the demo provider is allowed, a deterministic
  offline rewrite (`demo_rewrite`: subject, setting, light, camera, style from the text).
- The language: an image model (Nano Banana, multilingual) gets the rewrite in the language of the
  description, so the user reads and edits their own words; a video model (Veo, whose prompt guide
  and examples are English) gets English, with spoken lines kept in the user's language in quotes.
- The price: nothing is charged by a rewrite. When the description the user generates with IS a
  rewrite (accepted, or pasted back unchanged), the price is charged at Generate, in the
  generation's transaction, as its own ledger row keyed `gen:<request>:improve` (`charge_key`), shown
  as its own line on the confirm card; GenerationService.create_request(improve_price=...) takes the
  price the card showed and refuses (PriceChanged) a different current one. The fee pays for the
  rewrite already made and shown, so a failed generation refunds the generation's price, not it.
- Abuse: `reserve` counts every rewrite asked (a cache counter per user and clock hour).
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache

from botapp.i18n import t
from botapp.models import AIModel
from botapp.providers.base import PermanentError, SafetyBlocked
from botapp.providers.google import GEMINI, VERTEX
from botapp.providers.text import TextRequest, generate_text

DEMO = "demo"
WINDOW_SECONDS = 3600
_DEMO_BLOCK = re.compile(r"\[\[(safety|blocked?)(:[^\]]*)?\]\]", re.IGNORECASE)
_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")
_QUOTES = "\"'«»“”„`"


@dataclass(frozen=True, slots=True)
class Improvement:
    text: str
    backend: str  # "gemini" | "vertex" | "demo"

    @property
    def is_demo(self) -> bool:
        return self.backend == DEMO


# --- settings --------------------------------------------------------------------------------------------
def price() -> Decimal:
    return Decimal(str(settings.PROMPT_IMPROVE_PRICE))


def charge_key(request_id: int) -> str:
    """The ledger key of a generation's improvement fee (unique: charged once per request)."""
    return f"gen:{request_id}:improve"


def backend() -> str | None:
    """Where a rewrite runs now: "gemini", "vertex", "demo", or None (unavailable)."""
    mode = settings.GENERATION_PROVIDER_MODE
    demo = DEMO if settings.GENERATION_ALLOW_DEMO else None
    if mode == "demo":
        return demo
    ready = {
        GEMINI: bool(settings.GOOGLE_API_KEY),
        VERTEX: bool(settings.GOOGLE_VERTEX_API_KEY or settings.GOOGLE_CLOUD_PROJECT),
    }
    order = (VERTEX, GEMINI) if settings.GOOGLE_GENAI_USE_VERTEXAI else (GEMINI, VERTEX)
    for name in order:
        if ready[name]:
            return name
    return demo if mode == "auto" else None


def enabled() -> bool:
    """Is the ✨ Improve button offered (the setting on, and somewhere to run it)?"""
    return bool(settings.PROMPT_IMPROVE_ENABLED) and backend() is not None


def reserve(*, user_id: int) -> bool:
    """Count one rewrite for the user in the current clock hour; False when over PROMPT_IMPROVE_PER_HOUR."""
    limit = int(settings.PROMPT_IMPROVE_PER_HOUR)
    if limit <= 0:
        return True
    key = f"prompt-improve:{user_id}:{int(time.time() // WINDOW_SECONDS)}"
    cache.add(key, 0, timeout=WINDOW_SECONDS + 60)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=WINDOW_SECONDS + 60)
        count = 1
    return count <= limit


def minutes_to_next_window() -> int:
    return max(1, int((WINDOW_SECONDS - time.time() % WINDOW_SECONDS) // 60) + 1)


# --- the rewrite ---------------------------------------------------------------------------------------------
def instruction(*, kind: str, photos: int, limit: int) -> str:
    """The system instruction of the text model for a model of `kind` ("image" / "video")."""
    if kind == AIModel.Kind.VIDEO:
        parts = [
            "You rewrite descriptions for an AI video model (Google Veo). Turn the user's description into one "
            "prompt of flowing sentences: the subject and its action through the clip, the setting, the camera "
            "(shot type, movement such as a dolly, pan or tracking shot, angle, lens), the lighting, the style "
            "and mood, and the sound (ambience, effects, music; spoken lines in double quotes).",
        ]
        if photos:
            parts.append(
                "The clip starts from the user's image: describe the motion and the camera from that frame on, "
                "not a different scene."
            )
        parts.append("Write the prompt in English; keep spoken lines in the user's language, inside the quotes.")
    else:
        parts = [
            "You rewrite descriptions for an AI image model (Google Nano Banana). Turn the user's description "
            "into one detailed prompt: the subject and what it does, the setting, the composition and camera "
            "(shot type, angle, lens), the lighting, the colour palette, the mood and the style or medium.",
        ]
        if photos:
            parts.append(
                f"The user attached {photos} photo(s) and the description says what to do with them: keep it an "
                "instruction about those photos (edit, combine, restyle them) and do not describe them anew."
            )
        parts.append("Write in the language of the user's description.")
    parts.append(
        "Keep everything the user asked for and add nothing they would object to (no text, logos or real people "
        f"they did not mention). Answer with the prompt only: no preface, quotes, markdown or lists; at most "
        f"{limit} characters."
    )
    return " ".join(parts)


def demo_rewrite(*, text: str, kind: str, lang: str) -> str:
    """The offline rewrite (no Google credentials): the description in a fixed structure. Markers
    `[[safety]]` / `[[blocked]]` act like Google's filter, as in the demo provider."""
    marker = _DEMO_BLOCK.search(text)
    if marker:
        raise SafetyBlocked("SAFETY", "demo: blocked by a [[safety]] marker", details={"stage": "prompt"})
    subject = " ".join(text.split()).rstrip(" .")
    if kind == AIModel.Kind.VIDEO:
        return t("improve.rewrite.video", "en", text=subject)
    return t("improve.rewrite.image", lang, text=subject)


def clean(text: str, limit: int) -> str:
    """The model's answer as a prompt: no code fence or wrapping quotes, at most `limit` characters
    (cut at a word boundary)."""
    text = _FENCE.sub("", text.strip()).strip()
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    if len(text) > limit:
        cut = text[:limit]
        space = cut.rfind(" ")
        text = (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:-")
    return text


def improve(*, text: str, kind: str, lang: str, photos: int = 0, limit: int = 2000) -> Improvement:
    """Rewrite `text` for a model of `kind` (synchronous: call it off the event loop).

    Raises a ProviderError: SafetyBlocked when the filter refused the description or the rewrite,
    PermanentError(code="not_configured") when no backend is available, others as the Google provider."""
    where = backend()
    if where is None:
        raise PermanentError("no backend for the prompt rewrite", code="not_configured")
    if where == DEMO:
        return Improvement(clean(demo_rewrite(text=text, kind=kind, lang=lang), limit), DEMO)
    from botapp.engine.backends import google_config

    timeout = float(settings.PROMPT_IMPROVE_TIMEOUT_SECONDS)
    config = dataclasses.replace(google_config(), http_timeout=timeout)
    answer = generate_text(
        config,
        TextRequest(
            model=settings.PROMPT_IMPROVE_MODEL,
            instruction=instruction(kind=kind, photos=photos, limit=limit),
            text=text.strip(),
            backend=where,
        ),
    )
    improved = clean(answer, limit)
    if not improved:
        raise PermanentError("the rewrite was empty", code="empty_result")
    return Improvement(improved, where)
