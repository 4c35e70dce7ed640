"""What a generation request may ask of its model: the prompt, the photos by role, the options, the
variants and the video to extend, checked against the model's capabilities before anything is
charged. Each refusal is a DomainError the bot shows in the user's language."""

from __future__ import annotations

from botapp.capabilities import FIRST, IMAGE, LAST, REFERENCE, ROLES, image_role
from botapp.models import AIModel, GenRequest
from botapp.services.exceptions import (
    CannotExtend,
    InvalidParameter,
    InvalidPrompt,
    LastFrameNeedsFirst,
    PromptTooLong,
    ReferencesExclusive,
    TooManyImages,
    TooManyReferences,
)

Status = GenRequest.Status

VIDEO_PARAMS = ("duration_seconds", "generate_audio", "extend_from")


def validate_request(
    *, ai_model: AIModel, prompt: str, params: dict, input_images: list[dict], variants: int = 1
) -> tuple[str, dict]:
    """Check a prompt, photos and options against the model's capabilities; return cleaned values.

    Raises a DomainError (shown to the user) before anything is charged."""
    caps = ai_model.caps
    prompt = (prompt or "").strip()
    if not prompt:
        raise InvalidPrompt()
    if len(prompt) > caps.max_prompt_length:
        raise PromptTooLong(length=len(prompt), limit=caps.max_prompt_length)
    if not 1 <= int(variants) <= caps.max_variants:
        raise InvalidParameter(name="variants", value=variants)
    roles = [image_role(ai_model.kind, i) for i in input_images]
    if any(role not in ROLES for role in roles):
        raise InvalidParameter(name="role", value=next(r for r in roles if r not in ROLES))
    cleaned = {**ai_model.default_params, **{k: v for k, v in params.items() if v not in (None, "")}}
    ratio = cleaned.get("aspect_ratio")
    if ratio is not None and ratio not in caps.aspect_ratios:
        raise InvalidParameter(name="aspect_ratio", value=ratio)
    if caps.resolutions and cleaned.get("resolution") is None:
        cleaned["resolution"] = caps.resolutions[0]  # priced and sent as such: never left implicit
    resolution = cleaned.get("resolution")
    if resolution is not None and resolution not in caps.resolutions:
        if caps.resolutions:
            raise InvalidParameter(name="resolution", value=resolution)
        cleaned.pop("resolution")  # a default the model no longer has
    if ai_model.kind == AIModel.Kind.IMAGE:
        if roles.count(IMAGE) != len(roles):
            raise InvalidParameter(name="role", value=next(r for r in roles if r != IMAGE))
        if len(input_images) > caps.max_input_images:
            raise TooManyImages(limit=caps.max_input_images)
        for key in VIDEO_PARAMS:
            cleaned.pop(key, None)
        return prompt, cleaned
    if IMAGE in roles:
        raise InvalidParameter(name="role", value=IMAGE)
    first, last, references = roles.count(FIRST), roles.count(LAST), roles.count(REFERENCE)
    if first > min(1, caps.max_input_images) or last > (1 if caps.last_frame else 0):
        raise TooManyImages(limit=min(1, caps.max_input_images))
    if last and not first:
        raise LastFrameNeedsFirst()
    if references > caps.max_reference_images:
        raise TooManyReferences(limit=caps.max_reference_images)
    extend_from = cleaned.get("extend_from")
    if extend_from is not None and not caps.extension:
        raise CannotExtend()
    if references and (first or last or extend_from is not None):
        raise ReferencesExclusive()
    if extend_from is not None:
        if first or last:
            raise ReferencesExclusive()
        cleaned["extend_from"] = int(extend_from)
        cleaned["duration_seconds"] = caps.extension_seconds
        if caps.resolutions:
            cleaned["resolution"] = caps.resolutions[0]  # Veo extends at 720p
    else:
        if cleaned.get("duration_seconds") is None and caps.durations:
            allowed = caps.durations_for(resolution=cleaned.get("resolution"), references=references)
            cleaned["duration_seconds"] = max(allowed or caps.durations)
        duration = cleaned.get("duration_seconds")
        if duration is not None:
            allowed = caps.durations_for(resolution=cleaned.get("resolution"), references=references)
            if caps.durations and int(duration) not in allowed:
                raise InvalidParameter(name="duration_seconds", value=duration)
            cleaned["duration_seconds"] = int(duration)
    if "generate_audio" in cleaned:
        if not caps.audio:
            cleaned.pop("generate_audio")
        elif not isinstance(cleaned["generate_audio"], bool):
            raise InvalidParameter(name="generate_audio", value=cleaned["generate_audio"])
    return prompt, cleaned


def check_extendable(*, user_id: int, ai_model: AIModel, source_id: int) -> GenRequest:
    """The video to extend: this user's own delivered video, made by a model of the same provider
    family (Veo extends only Veo-made clips) that can extend. Raises CannotExtend."""
    source = (
        GenRequest.objects.filter(
            pk=source_id,
            user_id=user_id,
            kind=AIModel.Kind.VIDEO,
            status=Status.SUCCEEDED,
            delivered_at__isnull=False,
        )
        .select_related("ai_model")
        .first()
    )
    if (
        source is None
        or not ai_model.caps.extension
        or source.ai_model is None
        or source.ai_model.provider != ai_model.provider
        or not any(r.get("path") and r.get("kind", "video") == "video" for r in source.results or [])
    ):
        raise CannotExtend()
    return source
