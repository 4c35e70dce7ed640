"""Generation results in the admin: the staff-only view that streams a result file from storage, its
thumbnails, and the previews (image thumbnails, a video player) and readable tables shown on the
generation page and on a user's timeline.

Result files live in Django's default storage (`GenRequest.results[n]["path"]`, written by
botapp.engine.results under GENERATION_STORAGE_PREFIX). Local storage is not served under MEDIA_URL
in production, and an S3 object is private, so the admin streams them itself:

    /admin/botapp/genrequest/<id>/result/<n>/           the file, with its content type (Range requests
                                                        answered, so that a video can seek)
    /admin/botapp/genrequest/<id>/result/<n>/?thumb=1   an image's thumbnail (THUMB_SIDE px, cached)

Only staff with the view (or change) permission on generation requests get them.
"""

from __future__ import annotations

import hashlib
import io
import json
import mimetypes
import re
from collections.abc import Iterable, Iterator

from django.core.cache import cache
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from botapp.models import GenRequest
from botapp.selectors.support import ResultFile, result_files

THUMB_SIDE = 320
THUMB_MAX_SOURCE_BYTES = 40 * 1024 * 1024  # larger images are shown as they are
THUMB_CACHE_SECONDS = 7 * 24 * 3600
CHUNK = 256 * 1024
# What the browser may render inline (never an HTML or SVG document on the admin's origin).
INLINE_TYPES = {
    "image/png",
    "image/jpeg",
    "image/webp",
    "image/gif",
    "video/mp4",
    "video/webm",
    "video/quicktime",
}
RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


# --- URLs ------------------------------------------------------------------------------------------------
def result_url(gen_id: int, index: int, *, thumb: bool = False) -> str:
    url = reverse("admin:botapp_genrequest_result", args=(gen_id, index))
    return f"{url}?thumb=1" if thumb else url


# --- the view ---------------------------------------------------------------------------------------------
def content_type_of(item: dict) -> str:
    declared = str(item.get("mime_type") or "").split(";")[0].strip().lower()
    guessed = (mimetypes.guess_type(str(item.get("path") or ""))[0] or "").lower()
    for candidate in (declared, guessed):
        if candidate in INLINE_TYPES:
            return candidate
    return "application/octet-stream"


def _secure(response: HttpResponse, content_type: str, filename: str) -> HttpResponse:
    disposition = "inline" if content_type in INLINE_TYPES else "attachment"
    response["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response


def _thumbnail(path: str) -> bytes | None:
    """A small WebP/JPEG of the image at `path` (cached), or None when it cannot be made."""
    key = "admin-thumb:" + hashlib.sha256(f"{path}:{THUMB_SIDE}".encode()).hexdigest()
    data = cache.get(key)
    if data is not None:
        return data
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with default_storage.open(path, "rb") as fh:
            source = fh.read(THUMB_MAX_SOURCE_BYTES + 1)
        if len(source) > THUMB_MAX_SOURCE_BYTES:
            return None
        with Image.open(io.BytesIO(source)) as image:
            image = ImageOps.exif_transpose(image)
            image.thumbnail((THUMB_SIDE, THUMB_SIDE))
            if image.mode not in ("RGB", "RGBA"):
                image = image.convert("RGBA" if "A" in image.getbands() or image.mode == "P" else "RGB")
            out = io.BytesIO()
            image.save(out, format="WEBP", quality=80)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None
    data = out.getvalue()
    cache.set(key, data, THUMB_CACHE_SECONDS)
    return data


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) of a single `Range: bytes=...` header; None for no (or an unsupported) range.
    Raises ValueError when the range cannot be satisfied."""
    match = RANGE_RE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        length = int(last)
        if length == 0:
            raise ValueError("empty suffix range")
        return max(0, size - length), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise ValueError("range outside the file")
    return start, end


def _stream(fh, start: int, length: int) -> Iterator[bytes]:
    try:
        fh.seek(start)
        left = length
        while left > 0:
            chunk = fh.read(min(CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk
    finally:
        fh.close()


def serve_result(request: HttpRequest, gen: GenRequest, index: int) -> HttpResponse:
    """The response for result `index` of `gen` (the caller checked the permission)."""
    results = gen.results if isinstance(gen.results, list) else []
    if not 0 <= index < len(results) or not isinstance(results[index], dict):
        raise Http404("no such result")
    item = results[index]
    path = str(item.get("path") or "")
    if not path or ".." in path.split("/") or path.startswith("/"):
        raise Http404("this result has no stored file")
    content_type = content_type_of(item)
    filename = path.rsplit("/", 1)[-1].replace('"', "")
    if request.GET.get("thumb") and content_type.startswith("image/"):
        data = _thumbnail(path)
        if data is not None:
            return _secure(HttpResponse(data, content_type="image/webp"), "image/webp", f"thumb-{filename}.webp")
    try:
        fh = default_storage.open(path, "rb")
    except (FileNotFoundError, OSError) as exc:
        raise Http404("the file is not in storage") from exc
    try:
        size = fh.size
        wanted = _byte_range(request.headers.get("Range", ""), size)
    except ValueError:
        fh.close()
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    except Exception:
        fh.close()
        raise
    if wanted is None:
        response = FileResponse(fh, content_type=content_type)
        response["Content-Length"] = str(size)
    else:
        start, end = wanted
        response = StreamingHttpResponse(_stream(fh, start, end - start + 1), status=206, content_type=content_type)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    return _secure(response, content_type, filename)


# --- previews and readable tables --------------------------------------------------------------------------
PREVIEW_HEIGHT = 96  # px, a thumbnail's height on the pages


def _thumb_width(item: ResultFile) -> int:
    if isinstance(item.width, int | float) and isinstance(item.height, int | float) and item.width > 0 < item.height:
        return max(24, min(2 * PREVIEW_HEIGHT, round(PREVIEW_HEIGHT * item.width / item.height)))
    return PREVIEW_HEIGHT


def previews(gen_id: int, files: Iterable[ResultFile]) -> SafeString:
    """Thumbnails (linking to the full image) and video players for the stored result files."""
    items = [
        {
            "file": item,
            "url": result_url(gen_id, item.index),
            "thumb": result_url(gen_id, item.index, thumb=True),
            # The box is reserved before the image arrives (a lazy image without a size never loads).
            "thumb_width": _thumb_width(item),
            "thumb_height": PREVIEW_HEIGHT,
        }
        for item in files
    ]
    if not items:
        return mark_safe("")
    return mark_safe(render_to_string("admin/botapp/genrequest/previews.html", {"items": items}))


def _size(value: object) -> str:
    if not isinstance(value, int | float) or value <= 0:
        return "-"
    if value < 1024 * 1024:
        return f"{value / 1024:.0f} KB"
    return f"{value / 1024 / 1024:.1f} MB"


def _table(headers: Iterable[str], rows: Iterable[Iterable[object]]) -> SafeString:
    head = format_html_join("", '<th style="text-align:left;padding:2px 12px 2px 0">{}</th>', ((h,) for h in headers))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        (
            (format_html_join("", '<td style="padding:2px 12px 2px 0;vertical-align:top">{}</td>', ((c,) for c in r)),)
            for r in rows
        ),
    )
    return format_html('<table class="text-sm"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', head, body)


def raw_json(value: object) -> SafeString:
    """The stored JSON, collapsed."""
    text = json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)
    return format_html(
        '<details class="mt-2"><summary class="cursor-pointer text-font-subtle-light">{}</summary>'
        '<pre class="text-xs" style="white-space:pre-wrap;max-width:60rem">{}</pre></details>',
        _("Raw JSON"),
        text,
    )


def _short(value: object, limit: int = 24) -> str:
    text = str(value or "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def results_block(gen: GenRequest) -> SafeString:
    """The generation page's "Results": previews, one row per result, and the raw JSON collapsed."""
    results = gen.results if isinstance(gen.results, list) else []
    if not results:
        return mark_safe("-")
    rows = []
    for index, item in enumerate(results):
        item = item if isinstance(item, dict) else {"value": item}
        dimensions = f"{item['width']}×{item['height']}" if item.get("width") and item.get("height") else "-"
        duration = f"{float(item['duration']):.1f} s" if item.get("duration") else "-"
        link = (
            format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', result_url(gen.pk, index), _("open"))
            if item.get("path")
            else "-"
        )
        rows.append(
            (
                index,
                item.get("kind") or "-",
                item.get("mime_type") or "-",
                _size(item.get("size")),
                dimensions,
                duration,
                item.get("sent_as") or ("✓" if item.get("tg_file_id") else "-"),
                _short(item.get("path"), 60),
                link,
            )
        )
    headers = ("#", _("kind"), _("type"), _("size"), _("dimensions"), _("duration"), _("sent as"), _("path"), "")
    return format_html("{}{}{}", previews(gen.pk, result_files(results)), _table(headers, rows), raw_json(results))


def params_block(params: object) -> SafeString:
    if not params:
        return mark_safe("-")
    if not isinstance(params, dict):
        return raw_json(params)
    rows = [
        (key, json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value)
        for key, value in sorted(params.items())
    ]
    return format_html("{}{}", _table((_("parameter"), _("value")), rows), raw_json(params))


def input_images_block(images: object) -> SafeString:
    """The user's photos: Telegram file ids (not fetched here), or a stored earlier result."""
    if not images:
        return mark_safe("-")
    if not isinstance(images, list):
        return raw_json(images)
    rows = []
    for index, item in enumerate(images):
        item = item if isinstance(item, dict) else {"file_id": item}
        source = item.get("path") or item.get("file_unique_id") or _short(item.get("file_id"), 32)
        rows.append((index, source or "-", item.get("mime_type") or "-", _size(item.get("size"))))
    headers = ("#", _("file"), _("type"), _("size"))
    return format_html("{}{}", _table(headers, rows), raw_json(images))
