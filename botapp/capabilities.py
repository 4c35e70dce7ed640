"""What a model accepts, read from `AIModel.capabilities` (JSON the operator edits in the admin).

The bot's option screens, the request validation and the engine all read a model through
`Capabilities`, so a new model needs only a row in the admin. Django-free and pure.

Keys (all optional; a missing key means "not offered"):

    max_prompt_length     int   the longest description (default 2000)
    aspect_ratios         [str] e.g. ["1:1", "16:9", "1:8", "8:1"] (default ["1:1"])
    resolutions           [str] image: "1K", "2K", "4K"; video: "720p", "1080p", "4k"
    max_input_images      int   image: photos to edit or combine; video: 1 = a first frame
    max_variants          int   image: 1..4 results per request (default 1)
    negative_prompt       bool  (the legacy key "supports_negative_prompt" is read too)
    durations             [int] video seconds, e.g. [4, 6, 8]
    resolution_durations  {res: [int]}  durations allowed at a resolution (Veo: 1080p and 4k need 8 s)
    audio                 bool  an audio on/off switch (Veo on Vertex)
    last_frame            bool  a last frame (needs a first frame)
    max_reference_images  int   video "ingredients": up to 3 images of the subject (Veo 3.1)
    reference_durations   [int] durations allowed with reference images (Veo: [8])
    extension             bool  continues one of its own delivered videos
    extension_seconds     int   how long an extension adds (Veo: 7; Omni: 3..10)
    max_video_seconds     int   the longest clip an extension may make (Omni on the Gemini API: 30)
    extension_keeps_resolution bool  an extension keeps the clip's resolution (Omni); otherwise it is
                                made at the first resolution (Veo extends at 720p)
    edit                  bool  a delivered clip can be edited by conversation (Omni: the next turn of
                                the same interaction)
    thinking_levels       [str] image: the thinking levels offered (Nano Banana 2.1: minimal, medium, high)
    draft                 {"model": slug, "resolution": str}  a cheap, fast "⚡ Draft" first: the same
                                model (no "model") or another one, at that resolution; "Render in full"
                                under the draft makes it again at the quality the user picks
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_VARIANTS = 4

# The roles of a request's photos (`GenRequest.input_images[i]["role"]`):
IMAGE = "image"  # a photo to edit or combine (an image model); the default for an image model
FIRST = "first"  # a video's first frame; the default for a video model
LAST = "last"  # a video's last frame
REFERENCE = "reference"  # a video's reference image ("ingredient")
ROLES = (IMAGE, FIRST, LAST, REFERENCE)


def default_role(kind: str) -> str:
    return FIRST if kind == "video" else IMAGE


def image_role(kind: str, image: dict) -> str:
    """A photo's role: its own, or the kind's default (older requests and results carry none)."""
    return image.get("role") or default_role(kind)


KNOWN_KEYS = frozenset(
    {
        "max_prompt_length",
        "aspect_ratios",
        "resolutions",
        "max_input_images",
        "max_variants",
        "negative_prompt",
        "supports_negative_prompt",
        "durations",
        "resolution_durations",
        "audio",
        "last_frame",
        "max_reference_images",
        "reference_durations",
        "extension",
        "extension_seconds",
        "max_video_seconds",
        "extension_keeps_resolution",
        "edit",
        "thinking_levels",
        "draft",
    }
)
THINKING_LEVELS = ("minimal", "low", "medium", "high")


class CapabilitiesError(ValueError):
    """The capabilities JSON is malformed (the admin shows the message)."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    max_prompt_length: int = 2000
    aspect_ratios: tuple[str, ...] = ("1:1",)
    resolutions: tuple[str, ...] = ()
    max_input_images: int = 0
    max_variants: int = 1
    negative_prompt: bool = False
    durations: tuple[int, ...] = ()
    resolution_durations: dict[str, tuple[int, ...]] = field(default_factory=dict, hash=False, compare=False)
    audio: bool = False
    last_frame: bool = False
    max_reference_images: int = 0
    reference_durations: tuple[int, ...] = ()
    extension: bool = False
    extension_seconds: int = 7
    max_video_seconds: int = 0
    extension_keeps_resolution: bool = False
    edit: bool = False
    thinking_levels: tuple[str, ...] = ()
    draft: Draft | None = None

    @classmethod
    def parse(cls, raw: Any, *, strict: bool = False) -> Capabilities:
        """Read the JSON. `strict` (the admin) raises CapabilitiesError on anything malformed;
        otherwise a bad value falls back to its default so a half-edited row never breaks the bot."""
        if not isinstance(raw, dict):
            if strict:
                raise CapabilitiesError('Capabilities must be a JSON object, e.g. {"max_input_images": 3}.')
            raw = {}
        if strict:
            unknown = sorted(set(raw) - KNOWN_KEYS)
            if unknown:
                raise CapabilitiesError(f"Unknown capability keys: {', '.join(unknown)}.")
        values: dict[str, Any] = {}
        errors: list[str] = []

        def take(key: str, convert) -> None:
            if key not in raw or raw[key] is None:
                return
            try:
                values[key] = convert(raw[key])
            except (TypeError, ValueError) as exc:
                errors.append(f"{key}: {exc}")

        take("max_prompt_length", lambda v: _int(v, low=1, high=100_000))
        take("aspect_ratios", lambda v: _strings(v, non_empty=True))
        take("resolutions", _strings)
        take("max_input_images", lambda v: _int(v, low=0, high=14))
        take("max_variants", lambda v: _int(v, low=1, high=MAX_VARIANTS))
        take("durations", lambda v: tuple(_int(d, low=1, high=600) for d in _list(v)))
        take("resolution_durations", _resolution_durations)
        take("audio", _bool)
        take("last_frame", _bool)
        take("max_reference_images", lambda v: _int(v, low=0, high=14))
        take("reference_durations", lambda v: tuple(_int(d, low=1, high=600) for d in _list(v)))
        take("extension", _bool)
        take("extension_seconds", lambda v: _int(v, low=1, high=600))
        take("max_video_seconds", lambda v: _int(v, low=1, high=600))
        take("extension_keeps_resolution", _bool)
        take("edit", _bool)
        take("thinking_levels", _thinking_levels)
        take("draft", _draft)
        negative = raw.get("negative_prompt", raw.get("supports_negative_prompt"))
        if negative is not None:
            try:
                values["negative_prompt"] = _bool(negative)
            except ValueError as exc:
                errors.append(f"negative_prompt: {exc}")
        if strict:
            if errors:
                raise CapabilitiesError("; ".join(errors))
            caps = cls(**values)
            caps.check_consistent()
            return caps
        return cls(**values)

    def check_consistent(self) -> None:
        problems = []
        for res, durations in self.resolution_durations.items():
            if res not in self.resolutions:
                problems.append(f"resolution_durations names {res!r}, which is not in resolutions")
            if self.durations and set(durations) - set(self.durations):
                problems.append(f"resolution_durations[{res!r}] has durations not in durations")
        if self.reference_durations and self.durations and set(self.reference_durations) - set(self.durations):
            problems.append("reference_durations has durations not in durations")
        if self.draft and not self.draft.model and self.draft.resolution not in self.resolutions:
            problems.append(f"draft.resolution {self.draft.resolution!r} is not in resolutions")
        if self.last_frame and not self.max_input_images:
            problems.append("last_frame needs a first frame: set max_input_images to 1")
        if problems:
            raise CapabilitiesError("; ".join(problems) + ".")

    # --- what a request may combine -----------------------------------------------------------------
    def durations_for(self, *, resolution: str | None, references: int = 0) -> tuple[int, ...]:
        """The durations offered at this resolution, with or without reference images."""
        allowed = list(self.durations)
        if resolution and resolution in self.resolution_durations:
            allowed = [d for d in allowed if d in self.resolution_durations[resolution]]
        if references and self.reference_durations:
            allowed = [d for d in allowed if d in self.reference_durations]
        return tuple(allowed)

    @property
    def accepts_first_frame(self) -> bool:
        return self.max_input_images > 0

    def photo_limits(self, kind: str) -> dict[str, int]:
        """{role: how many} for each kind of photo a model of this kind takes, in the screen's order."""
        if kind != "video":
            return {IMAGE: self.max_input_images} if self.max_input_images else {}
        limits = {FIRST: 1} if self.max_input_images else {}
        if self.last_frame:
            limits[LAST] = 1
        if self.max_reference_images:
            limits[REFERENCE] = self.max_reference_images
        return limits


@dataclass(frozen=True, slots=True)
class Draft:
    """A draft: the model that makes it (its slug; "" = the same model) at `resolution`."""

    model: str = ""
    resolution: str = ""


def _draft(value: Any) -> Draft:
    if not isinstance(value, dict) or set(value) - {"model", "resolution"}:
        raise ValueError('must be an object {"model": slug, "resolution": "360p"}')
    model, resolution = value.get("model") or "", value.get("resolution") or ""
    if not isinstance(model, str) or not isinstance(resolution, str) or not (model or resolution):
        raise ValueError("needs a model slug, a resolution, or both (strings)")
    return Draft(model=model.strip(), resolution=resolution.strip())


def _thinking_levels(value: Any) -> tuple[str, ...]:
    levels = _strings(value)
    unknown = [level for level in levels if level not in THINKING_LEVELS]
    if unknown:
        raise ValueError(f"unknown level {unknown[0]!r} (one of {', '.join(THINKING_LEVELS)})")
    return levels


def _list(value: Any) -> list:
    if not isinstance(value, (list, tuple)):
        raise ValueError("must be a list")
    return list(value)


def _strings(value: Any, *, non_empty: bool = False) -> tuple[str, ...]:
    items = _list(value)
    if non_empty and not items:
        raise ValueError("must not be empty")
    if not all(isinstance(i, str) and i.strip() for i in items):
        raise ValueError("must be a list of strings")
    if len(set(items)) != len(items):
        raise ValueError("has a value twice")
    return tuple(i.strip() for i in items)


def _int(value: Any, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError("must be a whole number")
    number = int(value)
    if not low <= number <= high:
        raise ValueError(f"must be between {low} and {high}")
    return number


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _resolution_durations(value: Any) -> dict[str, tuple[int, ...]]:
    if not isinstance(value, dict):
        raise ValueError("must be an object {resolution: [seconds]}")
    return {str(k): tuple(_int(d, low=1, high=600) for d in _list(v)) for k, v in value.items()}


OPTION_KEYS = (
    "aspect_ratio",
    "resolution",
    "duration_seconds",
    "generate_audio",
    "extend_from",
    "edit_of",
    "thinking_level",
    "seed",
    "draft",
)


def normalize_params(
    caps: Capabilities, params: dict[str, Any], *, kind: str, changed: str | None = None, references: int = 0
) -> dict[str, Any]:
    """Options that fit together: each value one the model offers, and a duration allowed at the
    resolution (and with reference images). The option the user just `changed` is kept; the other
    one moves to the nearest allowed value (e.g. 1080p picked at 4 s -> 8 s; 4 s picked at 1080p ->
    the first resolution that allows 4 s)."""
    out = {k: v for k, v in params.items() if k in OPTION_KEYS}
    if out.get("aspect_ratio") not in caps.aspect_ratios:
        out["aspect_ratio"] = caps.aspect_ratios[0]
    if caps.resolutions:
        if out.get("resolution") not in caps.resolutions:
            out["resolution"] = caps.resolutions[0]
    else:
        out.pop("resolution", None)
    if caps.thinking_levels and kind != "video":
        if out.get("thinking_level") not in caps.thinking_levels:
            out["thinking_level"] = caps.thinking_levels[0]
    else:
        out.pop("thinking_level", None)
    if not caps.edit:
        out.pop("edit_of", None)
    if kind != "video":
        for key in ("duration_seconds", "generate_audio", "extend_from", "edit_of"):
            out.pop(key, None)
        return out
    if "extend_from" in out:
        out["duration_seconds"] = caps.extension_seconds
        if caps.resolutions and not caps.extension_keeps_resolution:
            out["resolution"] = caps.resolutions[0]
    elif caps.durations:
        duration = out.get("duration_seconds")
        allowed = caps.durations_for(resolution=out.get("resolution"), references=references)
        if duration not in allowed:
            if changed == "duration_seconds" and duration in caps.durations_for(resolution=None, references=references):
                # keep the duration the user chose: move to a resolution that allows it
                out["resolution"] = next(
                    r for r in caps.resolutions if duration in caps.durations_for(resolution=r, references=references)
                )
            elif allowed:
                out["duration_seconds"] = max(allowed)
            else:  # nothing fits this resolution: back to the first resolution and its longest duration
                if caps.resolutions:
                    out["resolution"] = caps.resolutions[0]
                fallback = caps.durations_for(resolution=out.get("resolution"), references=references)
                out["duration_seconds"] = max(fallback or caps.durations)
    else:
        out.pop("duration_seconds", None)
    if caps.audio:
        out["generate_audio"] = bool(out.get("generate_audio", True))
    else:
        out.pop("generate_audio", None)
    return out
