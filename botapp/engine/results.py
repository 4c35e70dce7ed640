"""Results in storage: every produced file saved through Django's storage (local MEDIA_ROOT or a
bucket) under GENERATION_STORAGE_PREFIX, read back for delivery and re-sends; a result over
Telegram's upload limit goes as a video re-encoded under it, else as a signed link to the stored file."""

from __future__ import annotations

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from botapp.engine import common
from botapp.models import GenRequest
from botapp.providers import PermanentError, ProviderResult
from botapp.providers.media import image_size, probe_mp4
from botapp.telegram.media import extension_for, shrink_video
from botapp.telegram.sender import SendRejected


def store_media(
    request: GenRequest, result: ProviderResult, *, variant: int | None = None
) -> tuple[list[dict], dict[str, bytes]]:
    """Save every produced file through Django's storage; return the results and the bytes by path.

    `variant`: the result of one of the request's variants (one provider call each): only its first
    file is kept (a variant is one image), stored as `<pk>-v<variant>` and marked with its index."""
    if not result.media:
        raise PermanentError("the provider returned no media", code="empty_result")
    stamp = (request.created_at or common.now()).strftime("%Y/%m/%d")
    results: list[dict] = []
    cache: dict[str, bytes] = {}
    media = result.media if variant is None else result.media[:1]
    for index, item in enumerate(media):
        if item.data is None:
            raise PermanentError(f"the result is only at {item.uri}, which cannot be fetched", code="download_failed")
        kind = "video" if item.mime_type.startswith("video/") else "image"
        width, height, duration = item.width, item.height, item.duration
        if kind == "image" and not (width and height):
            width, height = image_size(item.data)
        if kind == "video" and not (width and height and duration):
            info = probe_mp4(item.data)
            if info is not None:
                width, height, duration = width or info.width, height or info.height, duration or info.duration
        suffix = index if variant is None else f"v{variant}"
        name = f"{settings.GENERATION_STORAGE_PREFIX}/{stamp}/{request.pk}-{suffix}.{extension_for(item.mime_type)}"
        path = default_storage.save(name, ContentFile(item.data))
        cache[path] = item.data
        entry = {} if variant is None else {"variant": variant}
        results.append(
            {
                **entry,
                "kind": kind,
                "path": path,
                "mime_type": item.mime_type,
                "size": len(item.data),
                "width": width,
                "height": height,
                "duration": duration,
                "is_demo": bool(result.is_demo),
            }
        )
    return results, cache


def stored_result(*, path: str) -> bytes:
    """The bytes of a stored result (for delivery, and for sending it again on the user's request)."""
    with default_storage.open(path, "rb") as fh:
        return fh.read()


def public_url(path: str) -> str | None:
    """A URL the user can open (remote storage only; a local MEDIA_ROOT is not reachable)."""
    try:
        try:
            url = default_storage.url(path, expire=settings.GENERATION_LINK_TTL_SECONDS)
        except TypeError:
            url = default_storage.url(path)
    except Exception:
        return None
    return url if url and url.startswith(("https://", "http://")) else None


class TooLargeToSend(SendRejected):
    """A result over the upload limit that can be neither re-encoded under it nor linked to."""


def fit_for_upload(item: dict, data: bytes) -> tuple[bytes, str | None]:
    """What goes to Telegram for this result: (bytes to upload, None), or (its bytes, a link to send
    instead) when it is over TELEGRAM_UPLOAD_LIMIT_BYTES. A video over the limit is re-encoded under it
    (the item is marked `sent_variant: compressed`); what cannot be is linked to (remote storage only),
    else TooLargeToSend."""
    limit = settings.TELEGRAM_UPLOAD_LIMIT_BYTES
    if len(data) <= limit:
        return data, None
    smaller = shrink_video(data, limit) if item.get("kind", "image") == "video" else None
    if smaller is not None:
        item["sent_variant"] = "compressed"
        return smaller, None
    link = public_url(item["path"])
    if link is None:
        raise TooLargeToSend(f"result of {len(data)} bytes is over the {limit}-byte upload limit")
    return data, link
