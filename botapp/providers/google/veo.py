"""Veo through `generate_videos`: a long-running operation (Vertex AI only in SDK 3.x), submitted here
and polled later by name, from any process."""

from __future__ import annotations

import logging
from typing import Any

from google.genai import types

from ..base import (
    InputImage,
    InvalidInput,
    MediaItem,
    PermanentError,
    PollOutcome,
    ProviderRequest,
    ProviderResult,
    SafetyBlocked,
    Submission,
)
from ..media import probe_mp4
from .client import GEMINI, VERTEX
from .common import (
    GoogleProvider,
    aspect_ratio_param,
    checked_images,
    checked_video,
    expect_kind,
    int_param,
    str_param,
)
from .errors import map_operation_error, support_codes

logger = logging.getLogger(__name__)


def _image(image: InputImage) -> types.Image:
    return types.Image(image_bytes=image.data, mime_type=image.mime_type)


def _duration(data: bytes, requested: int | None) -> float | None:
    """The clip's length: the requested seconds, or what the MP4 says when that is longer (an
    extension comes back as the whole clip: the source and the new seconds)."""
    info = probe_mp4(data)
    if info is None:
        return requested
    return max(float(requested or 0), info.duration) or None


def backend_of_operation(operation_id: str) -> str | None:
    """Gemini API operations are named `models/{m}/operations/{id}`; Vertex ones
    `projects/.../publishers/google/models/{m}/operations/{id}` (or `publishers/...`)."""
    if operation_id.startswith(("models/", "tunedModels/")):
        return GEMINI
    if operation_id.startswith(("projects/", "publishers/")):
        return VERTEX
    return None


class VeoProvider(GoogleProvider):
    """Veo via `generate_videos` (Vertex AI); `submit` returns the operation name, `poll` checks it.

    What goes where (`GenerateVideosSource` / `GenerateVideosConfig`, serialised by the SDK into
    `:predictLongRunning` `instances[0]` / `parameters`): the first frame `source.image` (instance
    `image`), the clip to extend `source.video` (instance `video`), the last frame `config.last_frame`
    (instance `lastFrame`), references `config.reference_images` as ASSET images (instance
    `referenceImages`), and aspect ratio, duration, resolution ("720p" / "1080p" / "4k"), negative
    prompt, audio (`generateAudio`, Vertex only in the SDK) and seed in `parameters`. Combinations
    are left to Google (and checked before by the request validation): a 400 becomes InvalidInput.
    """

    name = "google-veo"
    method_label = "Veo (generate_videos)"
    default_to_vertex = True
    long_running = True

    def submit(self, req: ProviderRequest) -> Submission:
        expect_kind(req, "video", "Veo")
        if len(req.input_images) > 1:
            raise InvalidInput("Veo takes one first frame", code="input_not_supported")
        backend = self.backend_for(req)
        first = checked_images(req.input_images, "first frame")
        last = checked_images([req.last_frame], "last frame") if req.last_frame is not None else []
        references = checked_images(req.reference_images, "reference image")
        video = checked_video(req.source_video) if req.source_video is not None else None
        generate_audio = req.params.get("generate_audio")
        resolution = str_param(req, "resolution")
        config = types.GenerateVideosConfig(
            number_of_videos=1,
            aspect_ratio=aspect_ratio_param(req),
            duration_seconds=int_param(req, "duration_seconds"),
            resolution=resolution.lower() if resolution else None,  # Veo's "4k", "1080p"
            negative_prompt=req.negative_prompt or None,
            generate_audio=bool(generate_audio) if generate_audio is not None else None,
            seed=int_param(req, "seed"),
            last_frame=_image(last[0]) if last else None,
            reference_images=[
                types.VideoGenerationReferenceImage(
                    image=_image(image), reference_type=types.VideoGenerationReferenceType.ASSET
                )
                for image in references
            ]
            or None,
        )
        source = types.GenerateVideosSource(
            prompt=req.prompt or None,
            image=_image(first[0]) if first else None,
            video=types.Video(video_bytes=video.data, mime_type=video.mime_type) if video else None,
        )
        client = self.client(backend)
        operation = self._call(
            req,
            backend,
            "generate_videos",
            lambda: client.models.generate_videos(model=req.provider_model_id, source=source, config=config),
        )
        if operation.done:
            return Submission.done(self._finish(operation, req, backend))
        if not operation.name:
            raise PermanentError("generate_videos returned an operation without a name", code="no_operation")
        return Submission.pending(operation.name)

    def poll(self, operation_id: str, req: ProviderRequest) -> PollOutcome:
        if not operation_id:
            raise PermanentError("empty operation id", code="no_operation")
        backend = backend_of_operation(operation_id) or self.backend_for(req)
        client = self.client(backend)
        operation = self._call(
            req,
            backend,
            "operations.get",
            lambda: client.operations.get(types.GenerateVideosOperation(name=operation_id)),
        )
        if not operation.done:
            progress = None
            meta = operation.metadata or {}
            for key in ("progressPercent", "progress_percent", "progress"):
                if isinstance(meta.get(key), (int, float)):
                    progress = float(meta[key])
                    break
            return PollOutcome.pending(progress)
        return PollOutcome.done(self._finish(operation, req, backend))

    def _finish(self, operation: Any, req: ProviderRequest, backend: str) -> ProviderResult:
        if operation.error:
            error = map_operation_error(dict(operation.error))
            logger.warning("veo operation %s failed: %r", operation.name, error)
            raise error
        response = operation.response or operation.result
        metadata = self._base_metadata(req, backend)
        metadata["operation_name"] = operation.name
        videos = list(response.generated_videos or []) if response else []
        filtered_count = (response.rai_media_filtered_count or 0) if response else 0
        reasons = list(response.rai_media_filtered_reasons or []) if response else []
        metadata.update(rai_media_filtered_count=filtered_count, rai_media_filtered_reasons=reasons)
        requested = int_param(req, "duration_seconds")
        media: list[MediaItem] = []
        for generated in videos:
            video = generated.video
            if video is None:
                continue
            mime = video.mime_type or "video/mp4"
            if video.video_bytes:
                duration = _duration(video.video_bytes, requested)
                media.append(MediaItem(mime_type=mime, data=video.video_bytes, duration=duration))
            elif video.uri:
                if video.uri.startswith(("http://", "https://")):
                    data = self._download(video.uri, backend, req)
                    duration = _duration(data, requested)
                    media.append(MediaItem(mime_type=mime, data=data, uri=video.uri, duration=duration))
                else:
                    media.append(MediaItem(mime_type=mime, uri=video.uri, duration=requested))
        if media:
            return ProviderResult(media=media, metadata=metadata)
        if filtered_count or reasons:
            codes = [c for reason in reasons for c in support_codes(str(reason))]
            raise SafetyBlocked(
                "RAI_MEDIA_FILTERED",
                f"Veo filtered {filtered_count} video(s): " + "; ".join(map(str, reasons)),
                details={"rai_media_filtered_reasons": reasons, "support_codes": codes},
            )
        raise PermanentError("the video operation finished without a video", code="empty_result")
