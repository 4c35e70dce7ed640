"""What a generation request may ask of its model: the prompt, the photos by role, the options, the
variants and the video to extend, checked against the model's capabilities before anything is
charged. Each refusal is a DomainError the bot shows in the user's language."""

from __future__ import annotations

from botapp.capabilities import FIRST, IMAGE, LAST, REFERENCE, ROLES, image_role
from botapp.models import AIModel, GenRequest
from botapp.services.exceptions import (
    CannotEditVideo,
    CannotExtend,
    DomainError,
    ExtensionTooLong,
    InvalidParameter,
    InvalidPrompt,
    LastFrameNeedsFirst,
    PromptTooLong,
    ReferencesExclusive,
    TooManyImages,
    TooManyReferences,
)

Status = GenRequest.Status

VIDEO_PARAMS = ("duration_seconds", "generate_audio", "extend_from", "edit_of")


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
    _check_extras(caps, cleaned, kind=ai_model.kind)
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
    edit_of = cleaned.get("edit_of")
    if edit_of is not None:
        if not caps.edit or extend_from is not None:
            raise CannotEditVideo()
        cleaned["edit_of"] = _id(edit_of, CannotEditVideo)
    if references and (first or last or extend_from is not None):
        raise ReferencesExclusive()
    if extend_from is not None:
        if first or last:
            raise ReferencesExclusive()
        cleaned["extend_from"] = _id(extend_from, CannotExtend)
        cleaned["duration_seconds"] = caps.extension_seconds
        if caps.resolutions and not caps.extension_keeps_resolution:
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


MAX_SEED = 2**31 - 1


def _check_extras(caps, cleaned: dict, *, kind: str) -> None:
    """The thinking level, the seed and a draft's note of its full render."""
    level = cleaned.get("thinking_level")
    if level is not None and (kind == AIModel.Kind.VIDEO or level not in caps.thinking_levels):
        raise InvalidParameter(name="thinking_level", value=level)
    seed = cleaned.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED):
        raise InvalidParameter(name="seed", value=seed)
    draft = cleaned.get("draft")
    if draft is not None:
        full_model_id = draft.get("full_model_id") if isinstance(draft, dict) else None
        full_params = draft.get("full_params") if isinstance(draft, dict) else None
        if not isinstance(full_model_id, int) or isinstance(full_model_id, bool) or not isinstance(full_params, dict):
            raise InvalidParameter(name="draft", value="?")
        cleaned["draft"] = {"full_model_id": full_model_id, "full_params": full_params}


def _id(value: object, error: type[DomainError]) -> int:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise error() from None


def clip_seconds(request: GenRequest) -> float:
    """How long a delivered clip is: what the stored file says, else what was asked for."""
    durations = [float(r["duration"]) for r in request.results or [] if isinstance(r, dict) and r.get("duration")]
    return max(durations) if durations else float((request.params or {}).get("duration_seconds") or 0)


def check_sources(*, user_id: int, ai_model: AIModel, cleaned: dict) -> None:
    """The clips a request builds on, checked before anything is charged: the video it extends
    (`extend_from`) and the clip it edits by conversation (`edit_of`)."""
    if "extend_from" in cleaned:
        source = check_extendable(user_id=user_id, ai_model=ai_model, source_id=cleaned["extend_from"])
        limit = ai_model.caps.max_video_seconds
        if limit and clip_seconds(source) + ai_model.caps.extension_seconds > limit:
            raise ExtensionTooLong(limit=limit)
    if "edit_of" in cleaned:
        check_editable(user_id=user_id, ai_model=ai_model, source_id=cleaned["edit_of"])


def own_clip(*, user_id: int, ai_model: AIModel, source_id: int) -> GenRequest | None:
    """This user's own delivered video `source_id`, made by a model of the same provider family as
    `ai_model` (Veo extends only Veo-made clips, Omni edits only its own interactions), or None."""
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
    if source is None or source.ai_model is None or source.ai_model.provider != ai_model.provider:
        return None
    return source


def check_editable(*, user_id: int, ai_model: AIModel, source_id: int) -> GenRequest:
    """The clip to edit by conversation: the user's own clip (`own_clip`) of a model that edits, with the
    interaction it was made in. Raises CannotEditVideo."""
    source = own_clip(user_id=user_id, ai_model=ai_model, source_id=source_id) if ai_model.caps.edit else None
    if source is None or not source.provider_operation_id:
        raise CannotEditVideo()
    return source


def check_extendable(*, user_id: int, ai_model: AIModel, source_id: int) -> GenRequest:
    """The video to extend: the user's own clip (`own_clip`) of a model that extends, still in storage.
    Raises CannotExtend."""
    source = own_clip(user_id=user_id, ai_model=ai_model, source_id=source_id) if ai_model.caps.extension else None
    if source is None or not any(r.get("path") and r.get("kind", "video") == "video" for r in source.results or []):
        raise CannotExtend()
    return source
