"""Gemini Omni Flash (`gemini-omni-1.2-flash`) through the SDK's Interactions API: a background
interaction, created here and polled later by its id, from any process.

What reaches Google (`client.interactions.create`, `POST /{v}/interactions`; `v1` on the Gemini API,
`v1beta1` on Vertex, project-scoped there with project + location):

- `input`: one user turn of content blocks: the prompt (`text`), a first frame or up to 6 reference
  images (`image`, inline base64), the clip to extend (`video`, inline base64);
- `generation_config.video_config.task`: `extend` (a source video), `edit` (a previous interaction),
  `reference_to_video` (references), `image_to_video` (a first frame), else `text_to_video`;
  `generation_config.seed` when given;
- `response_format`: `{"type": "video", "resolution": "360p"|"720p"|"1080p"|"4k", "duration": "8s",
  "aspect_ratio": "16:9"|"9:16"}` from the params (an extension's `duration` is the seconds it adds);
- `response_modalities: ["video"]`, `background: true`, `store: true` (an edit refers to a stored
  interaction), and `previous_interaction_id` for an edit by conversation.

Omni has no negative prompt (it is not sent), no last frame, and no audio switch: with
`params["generate_audio"] is False` the audio track of the answer is removed here (ffmpeg from
imageio-ffmpeg, stream copy). The Interactions client raises its own exceptions
(`google.genai._interactions_errors`), mapped like the rest (errors.map_interactions_error); its own
retries are off (client.NO_RETRIES).

Answers are read through the SDK's `with_raw_response`: its parsed path builds a pydantic model class for
every answer (about 10 ms of CPU each under the GIL, most of a worker's time with 1,000 clips in flight),
so an interaction still running is read from its JSON (id, status) and a finished one is validated once
as the SDK's `Interaction`.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Any

from google.genai.interactions import CreateModelInteraction, Interaction

try:  # the typed request: `create(**kwargs)` builds a pydantic model class per call to validate them
    from google.genai._gaos.models import CreateInteractionRequest
except ImportError:  # pragma: no cover - a later SDK may move it; the keyword call still works
    CreateInteractionRequest = None

from ..base import (
    InvalidInput,
    MediaItem,
    PermanentError,
    PollOutcome,
    ProviderError,
    ProviderRequest,
    ProviderResult,
    SafetyBlocked,
    Submission,
)
from ..media import probe_mp4
from .common import (
    GoogleProvider,
    aspect_ratio_param,
    checked_images,
    checked_video,
    expect_kind,
    int_param,
    str_param,
)
from .errors import SAFETY_FINISH_REASONS, USER_REASONS, map_operation_error, support_codes

logger = logging.getLogger(__name__)

MAX_REFERENCE_IMAGES = 6
STRIP_AUDIO_TIMEOUT_SECONDS = 30.0
PENDING_STATUSES = frozenset({"in_progress", "queued", "requires_continuation"})
RPC_CODES = {
    "OK": 0,
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "OUT_OF_RANGE": 11,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "DATA_LOSS": 15,
    "UNAUTHENTICATED": 16,
}
_INTERACTION_WORD = re.compile(r"\binteractions?\b", re.IGNORECASE)
_MODEL_WORD = re.compile(r"\bmodels?\b|publisher model", re.IGNORECASE)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    text = value.strip().replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4))


def omni_input(req: ProviderRequest) -> tuple[list[dict[str, Any]], str]:
    """The content blocks of the user turn and the video task. InvalidInput, before any call, for
    what Omni cannot take: a last frame, more than one first frame or 6 references, both."""
    if req.last_frame is not None:
        raise InvalidInput("Gemini Omni takes no last frame", code="input_not_supported")
    if len(req.input_images) > 1:
        raise InvalidInput("Gemini Omni takes one first frame", code="input_not_supported")
    if len(req.reference_images) > MAX_REFERENCE_IMAGES:
        raise InvalidInput(
            f"Gemini Omni takes up to {MAX_REFERENCE_IMAGES} reference images, got {len(req.reference_images)}",
            code="too_many_images",
        )
    if req.input_images and req.reference_images:
        raise InvalidInput("Gemini Omni takes a first frame or reference images, not both", code="input_not_supported")
    first = checked_images(req.input_images, "first frame")
    references = checked_images(req.reference_images, "reference image")
    video = checked_video(req.source_video) if req.source_video is not None else None
    content: list[dict[str, Any]] = []
    if req.prompt:
        content.append({"type": "text", "text": req.prompt})
    content += [{"type": "image", "data": _b64(i.data), "mime_type": i.mime_type} for i in first + references]
    if video is not None:
        content.append({"type": "video", "data": _b64(video.data), "mime_type": video.mime_type})
    if not content:
        raise InvalidInput("Gemini Omni needs a prompt or an input", code="empty_prompt")
    if video is not None:
        task = "extend"
    elif req.previous_interaction_id:
        task = "edit"
    elif references:
        task = "reference_to_video"
    elif first:
        task = "image_to_video"
    else:
        task = "text_to_video"
    return content, task


def omni_create_args(req: ProviderRequest) -> dict[str, Any]:
    """The keyword arguments of `client.interactions.create` for a request."""
    content, task = omni_input(req)
    response_format: dict[str, Any] = {"type": "video"}
    resolution = str_param(req, "resolution")
    if resolution:
        response_format["resolution"] = resolution.lower()  # "4K" -> Google's "4k"
    seconds = int_param(req, "duration_seconds")
    if seconds:
        response_format["duration"] = f"{seconds}s"
    ratio = aspect_ratio_param(req)
    if ratio:
        response_format["aspect_ratio"] = ratio
    generation_config: dict[str, Any] = {"video_config": {"task": task}}
    seed = int_param(req, "seed")
    if seed is not None:
        generation_config["seed"] = seed
    args: dict[str, Any] = {
        "model": req.provider_model_id,
        "input": [{"type": "user_input", "content": content}],  # one user turn, as the SDK sends a block list
        "response_modalities": ["video"],
        "response_format": response_format,
        "generation_config": generation_config,
        "background": True,  # the SDK skips its client-side continuation for background interactions
        "store": True,  # (and refuses automatic_continuation=False with background=True)
    }
    if req.previous_interaction_id:
        args["previous_interaction_id"] = req.previous_interaction_id
    return args


def strip_audio(data: bytes, timeout: float = STRIP_AUDIO_TIMEOUT_SECONDS) -> bytes:
    """The MP4 without its audio track (stream copy, no re-encoding), with imageio-ffmpeg's ffmpeg.
    PermanentError(code="audio_strip_failed") if ffmpeg is missing, fails or is too slow."""
    try:
        import imageio_ffmpeg

        ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:
        raise PermanentError(f"cannot remove the sound: no ffmpeg ({exc})", code="audio_strip_failed") from exc
    with tempfile.TemporaryDirectory(prefix="omni-") as folder:
        source, target = os.path.join(folder, "in.mp4"), os.path.join(folder, "out.mp4")
        with open(source, "wb") as f:
            f.write(data)
        command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", source]
        command += ["-map", "0", "-map", "-0:a", "-c", "copy", "-an", "-movflags", "+faststart", target]
        try:
            done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PermanentError(f"cannot remove the sound: {exc}", code="audio_strip_failed") from exc
        if done.returncode != 0 or not os.path.exists(target):
            error = done.stderr.decode("utf-8", "replace").strip()[-300:]
            raise PermanentError(f"cannot remove the sound: ffmpeg said {error!r}", code="audio_strip_failed")
        with open(target, "rb") as f:
            stripped = f.read()
    info = probe_mp4(stripped)
    if info is None or info.has_audio:
        raise PermanentError("cannot remove the sound: the result is not a silent MP4", code="audio_strip_failed")
    return stripped


def _code_name(code: Any) -> tuple[str, int]:
    """(name, google.rpc.Code) of an interaction error's code: a number, a status name, or a URI
    whose last segment names it ("https://.../errors/resource-exhausted")."""
    if isinstance(code, int) or (isinstance(code, str) and code.strip().isdigit()):
        number = int(code)
        return next((n for n, c in RPC_CODES.items() if c == number), str(number)), number
    name = re.split(r"[/#:]", str(code or "").strip().rstrip("/"))[-1].upper().replace("-", "_")
    return name, RPC_CODES.get(name, 0)


def _errors_of(interaction: Any) -> list[dict[str, Any]]:
    found = [{"code": e.code, "message": e.message} for e in (interaction.errors or [])]
    for step in interaction.steps or []:
        error = getattr(step, "error", None)
        if error is not None:
            found.append({"code": getattr(error, "code", None), "message": getattr(error, "message", None)})
    return found


def interaction_failure(interaction: Any) -> ProviderError:
    """A finished interaction that did not complete as a typed error: a safety refusal, the
    operation errors by their google.rpc code (so a transient one is retried with a new
    interaction), a cancelled / incomplete one."""
    status = str(interaction.status or "unknown")
    errors = _errors_of(interaction)
    if not errors:
        code = "empty_result" if status == "incomplete" else "operation_failed"
        return PermanentError(f"the interaction ended {status} without an error", code=code)
    error = errors[0]
    name, number = _code_name(error.get("code"))
    message = str(error.get("message") or f"interaction {status}")
    text = f"interaction {status}: {name}: {message}"
    if name in SAFETY_FINISH_REASONS or name in ("BLOCKED", "RAI_BLOCKED"):
        reason = name if name in SAFETY_FINISH_REASONS else "RAI_OPERATION_BLOCKED"
        return SafetyBlocked(
            reason,
            text,
            user_reason=USER_REASONS.get(reason),
            details={"support_codes": support_codes(message), "interaction_errors": errors},
        )
    mapped = map_operation_error({"code": number, "message": message})
    mapped.details["interaction_errors"] = errors
    return mapped


@dataclass(frozen=True, slots=True)
class Running:
    """An interaction still running, as its answer says (all a poll needs)."""

    id: str
    status: str


def read_answer(response: Any) -> Any:
    """A raw answer of `interactions.create` / `.get`: `Running` while it runs, else the SDK's `Interaction`."""
    data = response.json()
    if not isinstance(data, dict):
        raise PermanentError("the interaction's answer is not a JSON object", code="invalid_response")
    if data.get("status") in PENDING_STATUSES:
        return Running(id=str(data.get("id") or ""), status=str(data["status"]))
    return Interaction.model_validate(data)


def create_raw(client: Any, args: dict[str, Any]) -> Any:
    """`interactions.create` with the raw answer, the request validated by the SDK's own classes."""
    if CreateInteractionRequest is None:
        return client.interactions.with_raw_response.create(**args)
    request = CreateInteractionRequest(body=CreateModelInteraction.model_validate(args))
    return client.interactions.with_raw_response.create(request=request)


def _names_interaction(message: str, interaction_id: str) -> bool:
    """Does a 404's message speak of an interaction (rather than of the model)?"""
    if interaction_id and interaction_id in message:
        return True
    return bool(_INTERACTION_WORD.search(message)) and not _MODEL_WORD.search(message)


class OmniProvider(GoogleProvider):
    """Gemini Omni Flash via `client.interactions` (Gemini API or Vertex, the request's / config's
    default backend); `submit` returns the interaction id, `poll` gets the interaction."""

    name = "google-omni"
    method_label = "Gemini Omni (interactions)"
    long_running = True

    def submit(self, req: ProviderRequest) -> Submission:
        expect_kind(req, "video", "Gemini Omni")
        args = omni_create_args(req)
        backend = self.backend_for(req)
        client = self.client(backend)
        try:
            interaction = self._call(
                req,
                backend,
                "interactions.create",
                lambda: read_answer(create_raw(client, args)),
            )
        except PermanentError as exc:
            previous = req.previous_interaction_id
            if exc.code == "model_not_found" and previous and _names_interaction(exc.message, previous):
                raise PermanentError(
                    f"the interaction to edit is unknown to Google: {exc.message}",
                    code="interaction_not_found",
                    user_reason="The video to edit is no longer available; please generate it again.",
                    details=exc.details,
                ) from exc
            raise
        if not interaction.id:
            raise PermanentError("interactions.create answered without an id", code="no_operation")
        if interaction.status == "completed":
            return Submission.done(self._finish(interaction, req, backend))
        if interaction.status not in PENDING_STATUSES:
            raise self._failed(interaction, req)
        return Submission.pending(interaction.id)

    def poll(self, operation_id: str, req: ProviderRequest) -> PollOutcome:
        """A 404 here is the interaction's (expired, deleted): `model_not_found`, which the engine
        reads at a poll as the operation's, not the model's."""
        if not operation_id:
            raise PermanentError("empty interaction id", code="no_operation")
        backend = self.backend_for(req)
        client = self.client(backend)
        interaction = self._call(
            req,
            backend,
            "interactions.get",
            lambda: read_answer(client.interactions.with_raw_response.get(operation_id)),
        )
        if interaction.status in PENDING_STATUSES:
            return PollOutcome.pending()
        if interaction.status != "completed":
            raise self._failed(interaction, req)
        return PollOutcome.done(self._finish(interaction, req, backend))

    def _failed(self, interaction: Any, req: ProviderRequest) -> ProviderError:
        error = interaction_failure(interaction)
        self._scrub(error)
        logger.warning("omni interaction %s of request %s failed: %r", interaction.id, req.request_id, error)
        return error

    def _finish(self, interaction: Any, req: ProviderRequest, backend: str) -> ProviderResult:
        video = interaction.output_video or _last_video(interaction)
        metadata = self._base_metadata(req, backend)
        metadata.update(
            interaction_id=interaction.id,
            operation_name=interaction.id,
            previous_interaction_id=req.previous_interaction_id,
            task=_task_of(interaction),
            resolution=(str_param(req, "resolution") or "").lower() or None,
            generate_audio=req.params.get("generate_audio"),
            negative_prompt_dropped=bool(req.negative_prompt),
        )
        if video is None:
            text = interaction.output_text
            raise PermanentError(
                "the interaction completed without a video",
                code="empty_result",
                user_reason="The model did not return a video; try rephrasing the prompt.",
                details={"text": text} if text else {},
            )
        mime = video.mime_type or "video/mp4"
        data = _unb64(video.data) if video.data else None
        if data is None and video.uri and video.uri.startswith(("http://", "https://")):
            data = self._download(video.uri, backend, req)
        silent = req.params.get("generate_audio") is False
        if data is None:
            if not video.uri:
                raise PermanentError("the interaction's video has no data", code="empty_result")
            if silent:
                raise PermanentError("cannot remove the sound of a video left at a URI", code="audio_strip_failed")
            return ProviderResult(media=[MediaItem(mime_type=mime, uri=video.uri)], metadata=metadata)
        info = probe_mp4(data)
        stripped = bool(silent and info is not None and info.has_audio)
        if stripped:
            data = strip_audio(data)
            info = probe_mp4(data)
        metadata["audio_stripped"] = stripped
        item = MediaItem(
            mime_type=mime,
            data=data,
            uri=video.uri,
            width=info.width if info else None,
            height=info.height if info else None,
            duration=info.duration if info else int_param(req, "duration_seconds"),
        )
        return ProviderResult(media=[item], metadata=metadata)


def _task_of(interaction: Any) -> str | None:
    """The video task as the interaction echoes it (a poll has no inputs to tell it)."""
    config = getattr(interaction, "generation_config", None)
    video_config = getattr(config, "video_config", None)
    task = getattr(video_config, "task", None)
    return str(task) if task else None


def _last_video(interaction: Any) -> Any:
    """The last video block of the model's output steps (what the SDK puts in `output_video`)."""
    for step in reversed(interaction.steps or []):
        if getattr(step, "type", None) != "model_output":
            continue
        for item in reversed(getattr(step, "content", None) or []):
            if getattr(item, "type", None) == "video":
                return item
    return None
