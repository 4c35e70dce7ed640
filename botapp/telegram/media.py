"""How a result goes to Telegram: photo, document or video, and what to do with a video over the limit.

- Images go as photos unless the user chose "send as file" or Telegram's photo rules forbid it
  (over 10 MB, width + height over 10000, a side ratio over 20, or a format sendPhoto does not
  take); then as a document (uncompressed).
- Videos go with sendVideo (or as a document with "send as file") up to the upload limit (50 MB on the
  public Bot API). A larger video is re-encoded to fit (H.264 at the bitrate the limit allows, at most
  1280 px wide) with the ffmpeg that imageio-ffmpeg ships. If even that does not fit, the caller sends
  a link to the stored original when the storage gives a public URL (S3: a signed URL), and otherwise
  refunds: see `botapp.engine.results` and `botapp.engine.delivery`.
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile

from botapp.providers.media import probe_mp4

log = logging.getLogger(__name__)

PHOTO = "photo"
DOCUMENT = "document"
VIDEO = "video"

PHOTO_MIME_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
PHOTO_MAX_SIDES_SUM = 10_000
PHOTO_MAX_RATIO = 20

EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/webm": "webm",
}


def extension_for(mime_type: str) -> str:
    return EXTENSIONS.get((mime_type or "").lower(), "bin")


def choose_method(
    *,
    kind: str,
    mime_type: str,
    size: int,
    width: int | None,
    height: int | None,
    send_as_file: bool,
    photo_limit: int,
) -> str:
    """ "photo", "document" or "video" for one result file."""
    if kind == "video":
        return DOCUMENT if send_as_file else VIDEO
    if send_as_file or (mime_type or "").lower() not in PHOTO_MIME_TYPES or size > photo_limit:
        return DOCUMENT
    if width and height:
        if width + height > PHOTO_MAX_SIDES_SUM:
            return DOCUMENT
        if max(width, height) / max(1, min(width, height)) > PHOTO_MAX_RATIO:
            return DOCUMENT
    return PHOTO


def ffmpeg_exe() -> str | None:
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # pragma: no cover - imageio-ffmpeg is a dependency
        log.exception("ffmpeg is not available")
        return None


def shrink_video(data: bytes, limit: int, *, timeout: float = 900.0) -> bytes | None:
    """A re-encoded copy of an MP4 that is at most `limit` bytes, or None if it cannot be made."""
    exe = ffmpeg_exe()
    info = probe_mp4(data)
    if exe is None or info is None or info.duration <= 0:
        return None
    audio_bps = 64_000
    total_bps = limit * 8 * 0.9 / info.duration  # 10 % for the container and rate-control overshoot
    for attempt in range(3):
        video_bps = int(total_bps * (0.85**attempt)) - audio_bps
        if video_bps < 50_000:
            video_bps = int(total_bps * (0.85**attempt) * 0.9)
            audio = ["-an"]
        else:
            audio = ["-c:a", "aac", "-b:a", str(audio_bps)]
        width = 1280 if video_bps > 1_500_000 else 854 if video_bps > 600_000 else 640
        with tempfile.TemporaryDirectory(prefix="shrink-") as folder:
            source, target = os.path.join(folder, "in.mp4"), os.path.join(folder, "out.mp4")
            with open(source, "wb") as fh:
                fh.write(data)
            command = [
                exe, "-y", "-v", "error", "-i", source, "-map", "0:v:0", "-map", "0:a?",
                "-vf", f"scale='min({width},iw)':-2", "-c:v", "libx264", "-preset", "veryfast",
                "-b:v", str(video_bps), "-maxrate", str(video_bps), "-bufsize", str(video_bps * 2),
                "-pix_fmt", "yuv420p", *audio, "-movflags", "+faststart", target,
            ]  # fmt: skip
            try:
                subprocess.run(command, check=True, capture_output=True, timeout=timeout)
            except (subprocess.SubprocessError, OSError) as exc:
                log.warning("could not re-encode a video of %d bytes: %r", len(data), exc)
                return None
            with open(target, "rb") as fh:
                out = fh.read()
        if 0 < len(out) <= limit:
            return out
        log.info("re-encoded video is %d bytes, limit %d (attempt %d)", len(out), limit, attempt + 1)
    return None
