"""Imagen through `generate_images` (Vertex AI only in SDK 3.x; shut down on the Gemini API)."""

from __future__ import annotations

from google.genai import types

from ..base import InvalidInput, MediaItem, PermanentError, ProviderRequest, ProviderResult, SafetyBlocked, Submission
from ..media import image_size
from .common import GoogleProvider, aspect_ratio_param, expect_kind, int_param
from .errors import support_codes


class ImagenProvider(GoogleProvider):
    """Imagen via `generate_images` (Vertex AI): aspect_ratio, number_of_images, negative_prompt."""

    name = "google-imagen"
    method_label = "Imagen (generate_images)"
    default_to_vertex = True

    def submit(self, req: ProviderRequest) -> Submission:
        expect_kind(req, "image", "Imagen")
        if req.input_images or req.last_frame is not None or req.reference_images or req.source_video is not None:
            raise InvalidInput("Imagen generate_images takes no input images", code="input_not_supported")
        backend = self.backend_for(req)
        config = types.GenerateImagesConfig(
            number_of_images=int_param(req, "number_of_images") or 1,
            aspect_ratio=aspect_ratio_param(req),
            negative_prompt=req.negative_prompt or None,
            include_rai_reason=True,
            output_mime_type=req.params.get("output_mime_type") or None,
        )
        client = self.client(backend)
        response = self._call(
            req,
            backend,
            "generate_images",
            lambda: client.models.generate_images(model=req.provider_model_id, prompt=req.prompt, config=config),
        )
        metadata = self._base_metadata(req, backend)
        media: list[MediaItem] = []
        filtered: list[str] = []
        for generated in response.generated_images or []:
            image = generated.image
            if image is not None and image.image_bytes:
                width, height = image_size(image.image_bytes)
                media.append(
                    MediaItem(
                        mime_type=image.mime_type or "image/png", data=image.image_bytes, width=width, height=height
                    )
                )
            elif generated.rai_filtered_reason:
                filtered.append(generated.rai_filtered_reason)
        metadata["rai_filtered_reasons"] = filtered
        if media:
            return Submission.done(ProviderResult(media=media, metadata=metadata))
        if filtered:
            codes = [c for reason in filtered for c in support_codes(reason)]
            raise SafetyBlocked(
                "RAI_FILTERED",
                "Imagen filtered every image: " + "; ".join(filtered),
                details={"rai_filtered_reasons": filtered, "support_codes": codes},
            )
        raise PermanentError("Imagen returned no images", code="empty_result")
