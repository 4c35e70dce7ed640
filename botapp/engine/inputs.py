"""The inputs of a request for the provider: the user's photos, downloaded from Telegram (or read
from our storage, for a result the user edits or animates) and checked with Pillow before anything is
sent to Google, each in the field its role names; and, for an extension, the stored video it continues.

Roles (`GenRequest.input_images[i]["role"]`, see botapp.capabilities.ROLES): "image" (an image
model's photo to edit or combine) and "first" (a video's first frame) -> `input_images`; "last" ->
`last_frame`; "reference" -> `reference_images`. `params["extend_from"]` (the id of the user's
delivered video) -> `source_video`, read from storage; `params["edit_of"]` (the id of the user's delivered
clip edited by conversation) -> `previous_interaction_id`, the interaction that clip was made in. Neither,
nor a draft's note of its full render (`params["draft"]`), is passed on in the provider's params."""

from __future__ import annotations

import io

from django.conf import settings
from django.core.files.storage import default_storage

from botapp.capabilities import FIRST, IMAGE, LAST, REFERENCE, image_role
from botapp.models import AIModel, GenRequest
from botapp.providers import InputImage, InputVideo, ProviderRequest
from botapp.providers.media import probe_mp4
from botapp.redaction import error_text
from botapp.telegram.sender import FileTooLarge, SendRejected, get_sender

INPUT_IMAGE_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
MAX_INPUT_PIXELS = 40_000_000
MAX_SOURCE_VIDEO_BYTES = 48 * 1024 * 1024  # sent inline (base64) to Google: keep the body well under 64 MB


class InputImageError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class InputVideoError(InputImageError):
    """The video an extension continues is gone, unreadable or too large (the request fails, refunded)."""


def interaction_of(source: GenRequest) -> str:
    """The interaction a clip was made in: its operation id (Omni's interaction id, or the demo's)."""
    return source.provider_operation_id.removeprefix("interactions/")


def build_provider_request(request: GenRequest, *, with_images: bool) -> ProviderRequest:
    """The provider's request. `with_images`: fetch the photos and the source video (to submit);
    without them (to poll) only the ids and options are needed."""
    ai_model = request.ai_model
    params = dict(request.params or {})
    extend_from = params.pop("extend_from", None)
    edit_of = params.pop("edit_of", None)
    params.pop("draft", None)
    by_role: dict[str, list[InputImage]] = {IMAGE: [], FIRST: [], LAST: [], REFERENCE: []}
    source_video = None
    previous_interaction_id = None
    if with_images:
        if edit_of is not None:  # to submit only: a poll reads nothing from the database
            previous_interaction_id = previous_interaction(request=request, source_id=edit_of)
        for meta in request.input_images or []:
            by_role.setdefault(image_role(request.kind, meta), []).append(fetch_input_image(meta))
        if extend_from is not None:
            source_video = fetch_source_video(request=request, source_id=extend_from)
    if request.kind == AIModel.Kind.VIDEO:
        images = by_role[FIRST] + by_role[IMAGE]
    else:  # an image model takes photos only (validation refuses other roles)
        images = by_role[IMAGE] + by_role[FIRST] + by_role[LAST] + by_role[REFERENCE]
        by_role[LAST] = by_role[REFERENCE] = []
    return ProviderRequest(
        provider_model_id=ai_model.provider_model_id if ai_model else request.model,
        kind=request.kind,
        prompt=request.prompt,
        negative_prompt=request.negative_prompt or None,
        input_images=images,
        params=params,
        backend=(ai_model.api_backend or None) if ai_model else None,
        request_id=str(request.pk),
        last_frame=by_role[LAST][0] if by_role[LAST] else None,
        reference_images=by_role[REFERENCE],
        source_video=source_video,
        previous_interaction_id=previous_interaction_id,
    )


def previous_interaction(*, request: GenRequest, source_id: object) -> str:
    """The interaction of the user's clip `source_id` that this request edits by conversation."""
    try:
        source = GenRequest.objects.filter(pk=int(source_id), user_id=request.user_id).first()
    except (TypeError, ValueError):
        source = None
    if source is None or not source.provider_operation_id:
        raise InputVideoError("edit_source_unavailable", f"request #{source_id} has no interaction to continue")
    return interaction_of(source)


def fetch_source_video(*, request: GenRequest, source_id: object) -> InputVideo:
    """The stored video of the user's request `source_id` that this request extends."""
    try:
        source = GenRequest.objects.filter(pk=int(source_id), user_id=request.user_id).first()
    except (TypeError, ValueError):
        source = None
    results = (source.results or []) if source is not None else []
    item = next((r for r in results if r.get("path") and r.get("kind", "video") == "video"), None)
    if item is None:
        raise InputVideoError("input_video_unavailable", f"request #{source_id} has no stored video to extend")
    try:
        with default_storage.open(item["path"], "rb") as fh:
            data = fh.read(MAX_SOURCE_VIDEO_BYTES + 1)
    except OSError as exc:
        raise InputVideoError("input_video_unavailable", f"stored video {item['path']}: {error_text(exc)}") from exc
    if len(data) > MAX_SOURCE_VIDEO_BYTES:
        raise InputVideoError("input_video_too_large", f"the video to extend is over {MAX_SOURCE_VIDEO_BYTES} bytes")
    if probe_mp4(data) is None:
        raise InputVideoError("input_video_invalid", f"stored video {item['path']} is not an MP4")
    return InputVideo(data=data, mime_type=item.get("mime_type") or "video/mp4")


def fetch_input_image(meta: dict) -> InputImage:
    limit = settings.MAX_INPUT_IMAGE_BYTES
    size = meta.get("size") or 0
    if size and int(size) > limit:
        raise InputImageError("input_image_too_large", f"input photo of {size} bytes, limit {limit}")
    if meta.get("path"):  # one of our stored results
        try:
            with default_storage.open(meta["path"], "rb") as fh:
                data = fh.read(limit + 1)
        except OSError as exc:
            raise InputImageError("input_image_unavailable", f"stored image {meta['path']}: {error_text(exc)}") from exc
    else:
        sender = get_sender()
        if sender is None or not meta.get("file_id"):
            raise InputImageError("input_image_unavailable", "no Telegram bot to download the input photo")
        try:
            data = sender.download(meta["file_id"], max_bytes=min(limit, settings.TELEGRAM_DOWNLOAD_LIMIT_BYTES))
        except FileTooLarge as exc:
            raise InputImageError("input_image_too_large", error_text(exc)) from exc
        except SendRejected as exc:  # an unknown file_id, or the file server's 4xx
            raise InputImageError("input_image_unavailable", f"download refused: {error_text(exc)}") from exc
    if len(data) > limit:
        raise InputImageError("input_image_too_large", f"input photo over {limit} bytes")
    return InputImage(data=data, mime_type=check_image(data))


def check_image(data: bytes) -> str:
    """The image's MIME type if Pillow can read all of it and Google accepts the format."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format
            width, height = im.size
            if width * height > MAX_INPUT_PIXELS:
                raise InputImageError("input_image_too_large", f"input photo of {width}x{height} pixels")
            im.verify()
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # verify() does not decode the pixels; a truncated file fails here
    except InputImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise InputImageError("input_image_too_large", str(exc)) from exc
    except Exception as exc:
        raise InputImageError("input_image_invalid", f"unreadable input photo: {error_text(exc)}") from exc
    if fmt not in INPUT_IMAGE_FORMATS:
        raise InputImageError("input_image_invalid", f"unsupported input photo format {fmt}")
    return INPUT_IMAGE_FORMATS[fmt]
