"""Nano Banana: Gemini image models through `generate_content` with image output (both backends)."""

from __future__ import annotations

from typing import Any

from google.genai import types

from ..base import (
    InvalidInput,
    MediaItem,
    PermanentError,
    ProviderRequest,
    ProviderResult,
    SafetyBlocked,
    Submission,
)
from ..media import image_size
from .common import (
    GoogleProvider,
    aspect_ratio_param,
    checked_images,
    dump_model,
    expect_kind,
    int_param,
    str_param,
)
from .errors import SAFETY_FINISH_REASONS, USER_REASONS, enum_name

MAX_INPUT_IMAGES = 14  # Nano Banana 2 and Pro; older ids take fewer (the model's capabilities say so)


class NanoBananaProvider(GoogleProvider):
    """Gemini image models ("Nano Banana") via `generate_content` with image output; both backends.

    Input images (up to 14 on Nano Banana 2 / Pro; the model's capabilities say how many) are sent as
    inline parts after the prompt (editing / composition). `ImageConfig` carries the aspect ratio
    (any the model lists, e.g. "1:8") and `image_size` from `params["resolution"]` ("1K" / "2K" /
    "4K"; Google wants the capital K). `params["thinking_level"]` (Nano Banana 2.1: "minimal", "medium",
    "high") goes in `ThinkingConfig.thinking_level`, upper case (the SDK sends `generationConfig.thinkingConfig`
    with the field as `thinking_level`, which Google's JSON reads like `thinkingLevel`). The negative prompt,
    which generate_content does not have, is
    appended to the prompt as "Avoid: ...". `params["response_modalities"]` overrides the default
    ["IMAGE"] (older ids need ["TEXT","IMAGE"]).
    """

    name = "google-gemini-image"
    method_label = "generate_content"

    def submit(self, req: ProviderRequest) -> Submission:
        expect_kind(req, "image", "Nano Banana")
        if req.last_frame is not None or req.reference_images or req.source_video is not None:
            raise InvalidInput(
                "Nano Banana takes photos to edit, not frames, references or a video", code="input_not_supported"
            )
        if len(req.input_images) > MAX_INPUT_IMAGES:
            raise InvalidInput(
                f"{len(req.input_images)} input images; Nano Banana takes up to {MAX_INPUT_IMAGES}",
                code="too_many_images",
            )
        backend = self.backend_for(req)
        images = checked_images(req.input_images)
        ratio = aspect_ratio_param(req)
        size = str_param(req, "resolution")
        size = size.upper() if size else None  # "4k" -> "4K": Google rejects a lower-case k
        prompt = req.prompt
        if req.negative_prompt:
            prompt = f"{prompt}\n\nAvoid: {req.negative_prompt}"
        contents: list[Any] = [prompt]
        contents += [types.Part.from_bytes(data=i.data, mime_type=i.mime_type) for i in images]
        modalities = req.params.get("response_modalities") or ["IMAGE"]
        config = types.GenerateContentConfig(
            response_modalities=list(modalities),
            image_config=types.ImageConfig(aspect_ratio=ratio, image_size=size) if ratio or size else None,
            seed=int_param(req, "seed"),
            thinking_config=_thinking(req),
            automatic_continuation=False,
        )
        client = self.client(backend)
        response = self._call(
            req,
            backend,
            "generate_content",
            lambda: client.models.generate_content(model=req.provider_model_id, contents=contents, config=config),
        )
        return Submission.done(self._parse(response, req, backend))

    def _parse(self, response: Any, req: ProviderRequest, backend: str) -> ProviderResult:
        metadata = self._base_metadata(req, backend)
        metadata.update(
            model_version=getattr(response, "model_version", None),
            response_id=getattr(response, "response_id", None),
            usage=dump_model(getattr(response, "usage_metadata", None)),
        )
        feedback = getattr(response, "prompt_feedback", None)
        block = enum_name(getattr(feedback, "block_reason", None)) if feedback else None
        if block and block != "BLOCKED_REASON_UNSPECIFIED":
            raise SafetyBlocked(
                block,
                f"prompt blocked: {block} {getattr(feedback, 'block_reason_message', '') or ''}".strip(),
                details={"prompt_feedback": dump_model(feedback), "stage": "prompt"},
                user_reason=USER_REASONS.get(block, "The prompt was blocked by the safety filter."),
            )
        media: list[MediaItem] = []
        texts: list[str] = []
        finish: str | None = None
        finish_message: str | None = None
        for candidate in response.candidates or []:
            finish = enum_name(candidate.finish_reason) or finish
            finish_message = getattr(candidate, "finish_message", None) or finish_message
            parts = candidate.content.parts if candidate.content and candidate.content.parts else []
            for part in parts:
                if getattr(part, "thought", None):
                    continue  # interim "thinking" images of the Pro models
                blob = part.inline_data
                if blob is not None and blob.data and (blob.mime_type or "image/").startswith("image/"):
                    width, height = image_size(blob.data)
                    media.append(
                        MediaItem(mime_type=blob.mime_type or "image/png", data=blob.data, width=width, height=height)
                    )
                elif part.text:
                    texts.append(part.text)
        metadata["finish_reason"] = finish
        text = "\n".join(texts) or None
        if media:
            return ProviderResult(media=media, text=text, metadata=metadata)
        if finish in SAFETY_FINISH_REASONS:
            raise SafetyBlocked(
                finish,
                f"output blocked: finish_reason={finish} {finish_message or ''}".strip(),
                details={"stage": "output", "text": text},
                user_reason=USER_REASONS.get(finish),
            )
        if not response.candidates:
            raise PermanentError("the model returned no candidates", code="empty_result")
        raise PermanentError(
            f"the model returned no image (finish_reason={finish}){': ' + text if text else ''}",
            code="no_image",
            user_reason="The model did not return an image; try rephrasing the prompt.",
            details={"finish_reason": finish, "text": text},
        )


def _thinking(req: ProviderRequest) -> types.ThinkingConfig | None:
    level = str_param(req, "thinking_level")
    return types.ThinkingConfig(thinking_level=level.upper()) if level else None
