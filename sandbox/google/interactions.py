"""The fake's Interactions API for Gemini Omni video: Google's checks of `POST /{v}/interactions`,
the state of each interaction, and the JSON the SDK reads back.

The body `client.interactions.create` sends (google-genai 3.6.1, `_gaos/google_genai.py` and
`_gaos/interactions.py`): `model`, `input` (a list of content blocks becomes one step
`[{"type": "user_input", "content": [...]}]`; a string stays a string), `response_modalities`,
`response_format` (`{"type": "video", "resolution", "duration": "8s", "aspect_ratio"}`, or a list
of formats), `generation_config` (`seed`, `video_config.task`), `background`, `store`,
`previous_interaction_id`. Content blocks: `{"type": "text", "text"}`, `{"type": "image" | "video",
"data": <base64>, "mime_type"}` (or `uri`).

What Google refuses here (400 INVALID_ARGUMENT): no "video" in response_modalities, a resolution
other than 360p/720p/1080p/4k, an aspect ratio the model lacks (16:9, 9:16), a clip outside 3-15 s,
more than 6 images or 1 video, an unknown task, an image_to_video without exactly one image, an
extension without a source, of other than 3-10 s, or longer than 30 s in all (40 s on Vertex).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import validation
from .media import video_seconds
from .records import b64decode_any, interaction_blocks
from .scenarios import IMAGEN_RAI_MESSAGE, VEO_RAI_MESSAGE, Scenario

OMNI_RESOLUTIONS = ("360p", "720p", "1080p", "4k")
OMNI_RATIOS = validation.OMNI_RATIOS
CLIP_SECONDS = (3, 15)
EXTENSION_SECONDS = (3, 10)
MAX_TOTAL_SECONDS = {"gemini": 30, "vertex": 40}
MAX_IMAGES = 6
DEFAULT_SECONDS = 8
DEFAULT_EXTENSION_SECONDS = 5
TASKS = ("text_to_video", "image_to_video", "reference_to_video", "edit", "extend")
RPC_NAMES = {
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    10: "ABORTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
}
_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*s?\s*$")


# --------------------------------------------------------------------------------------------
# Reading a request body
# --------------------------------------------------------------------------------------------


def video_format(body: Any) -> dict[str, Any]:
    """The `response_format` entry of type video ({} if none)."""
    value = body.get("response_format") if isinstance(body, dict) else None
    for entry in value if isinstance(value, list) else [value]:
        if isinstance(entry, dict) and entry.get("type") == "video":
            return entry
    return {}


def task_of(body: Any) -> str | None:
    config = (body.get("generation_config") or {}) if isinstance(body, dict) else {}
    return ((config.get("video_config") or {}) if isinstance(config, dict) else {}).get("task")


def parse_seconds(value: Any) -> float | None:
    """ "8s" / "8" / 8 -> 8.0; None -> None; ValueError for anything else."""
    if value is None:
        return None
    m = _SECONDS.match(str(value))
    if not m:
        raise ValueError(value)
    return float(m.group(1))


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What an accepted request will answer: the task and the clip's length, shape and resolution."""

    task: str
    seconds: int
    aspect: str
    resolution: str


def check(body: Any, backend: str, ratios: tuple[str, ...], previous: Interaction | None) -> str | Plan:
    """Why Google would refuse this create call (a message), or the Plan of its answer."""
    modalities = [str(m).lower() for m in (body.get("response_modalities") or [])]
    if "video" not in modalities:
        return 'This model only generates video: set response_modalities to ["video"].'
    fmt = video_format(body)
    resolution, ratio = fmt.get("resolution"), fmt.get("aspect_ratio")
    if resolution is not None and resolution not in OMNI_RESOLUTIONS:
        return f"Unsupported resolution: {resolution}. Supported values: {', '.join(OMNI_RESOLUTIONS)}."
    if ratio is not None and ratio not in ratios:
        return f"Unsupported aspect ratio: {ratio}. Supported values: {', '.join(ratios)}."
    try:
        duration = parse_seconds(fmt.get("duration"))
    except ValueError:
        return f'Invalid duration: {fmt.get("duration")!r}. Use a number of seconds such as "8s".'
    blocks = interaction_blocks(body)
    images = [b for b in blocks if b.get("type") == "image"]
    videos = [b for b in blocks if b.get("type") == "video"]
    for block in images + videos:
        if not block.get("data") and not block.get("uri"):
            return f"A content block of type {block.get('type')} has neither data nor uri."
    if not blocks and previous is None:
        return "The input is empty."
    if len(images) > MAX_IMAGES:
        return f"At most {MAX_IMAGES} images are supported per request, got {len(images)}."
    if len(videos) > 1:
        return f"At most 1 video is supported per request, got {len(videos)}."
    task = task_of(body) or _inferred_task(body, images, videos)
    if task not in TASKS:
        return f"Unsupported video task: {task}. Supported values: {', '.join(TASKS)}."
    source = _source_seconds(videos, previous)
    if task == "extend":
        if source is None:
            return "The extend task needs a video or a previous_interaction_id."
        added = duration if duration is not None else DEFAULT_EXTENSION_SECONDS
        low, high = EXTENSION_SECONDS
        if not low <= added <= high:
            return f"An extension adds {low} to {high} seconds, got {added:g}s."
        limit = MAX_TOTAL_SECONDS.get(backend, MAX_TOTAL_SECONDS["gemini"])
        if source + added > limit:
            return f"The extended video would be {source + added:g}s long; at most {limit}s are supported."
        seconds = round(source + added)
    else:
        low, high = CLIP_SECONDS
        if duration is not None and not low <= duration <= high:
            return f"Unsupported duration: {duration:g}s. Supported durations: {low}s to {high}s."
        if task == "edit":
            if source is None:
                return "The edit task needs a previous_interaction_id or a video."
            seconds = round(source)
        else:
            seconds = round(duration or DEFAULT_SECONDS)
        if task == "image_to_video" and len(images) != 1:
            return f"The image_to_video task takes exactly one image, got {len(images)}."
        if task == "reference_to_video" and not images:
            return "The reference_to_video task needs at least one reference image."
    aspect = ratio or (previous.aspect if previous is not None else "16:9")
    return Plan(task, max(1, seconds), aspect, resolution or (previous.resolution if previous else "720p"))


def _inferred_task(body: Any, images: list[Any], videos: list[Any]) -> str:
    if videos:
        return "extend"
    if body.get("previous_interaction_id"):
        return "edit"
    if len(images) > 1:
        return "reference_to_video"
    return "image_to_video" if images else "text_to_video"


def _source_seconds(videos: list[dict[str, Any]], previous: Interaction | None) -> float | None:
    """The length of the clip an extension or edit starts from: the inline video's, else the
    previous interaction's."""
    if videos and isinstance(videos[0].get("data"), str):
        return video_seconds(b64decode_any(videos[0]["data"])) or 0.0
    return float(previous.seconds) if previous is not None else None


# --------------------------------------------------------------------------------------------
# State and answers
# --------------------------------------------------------------------------------------------


class Interaction:
    """One interaction the fake answered (kept small, like `_Operation`)."""

    __slots__ = (
        "aspect",
        "backend",
        "created",
        "created_at",
        "errors",
        "generation_config",
        "id",
        "model",
        "plan_task",
        "poll_failures",
        "polls",
        "previous_id",
        "resolution",
        "response_format",
        "scenario",
        "seconds",
        "status",
        "stored",
        "variant",
    )

    def __init__(self, interaction_id: str, model: str, backend: str, body: dict[str, Any], plan: Plan, s: Scenario):
        self.id = interaction_id
        self.model = model
        self.backend = backend
        self.plan_task = plan.task
        self.seconds = plan.seconds
        self.aspect = plan.aspect
        self.resolution = plan.resolution
        self.previous_id = body.get("previous_interaction_id") or None
        self.stored = body.get("store") is not False
        self.generation_config = body.get("generation_config") or {}
        self.response_format = body.get("response_format")
        self.scenario = s
        self.variant = 0
        self.status = "in_progress"
        self.errors: list[dict[str, Any]] | None = None
        self.created = time.monotonic()
        self.created_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.polls = 0
        self.poll_failures = 0

    def is_done(self) -> bool:
        return self.scenario.run_done(polls=self.polls, age=time.monotonic() - self.created)

    def finish(self) -> None:
        """Decide the outcome (once): failed as the scenario scripts it, else completed."""
        self.errors = failure_of(self.scenario)
        self.status = "failed" if self.errors else "completed"

    def resource(self, content: dict[str, Any] | None = None) -> dict[str, Any]:
        """The interaction as Google answers it; a completed one carries its video `content`."""
        found: dict[str, Any] = {
            "id": self.id,
            "object": "interaction",
            "model": self.model,
            "status": self.status,
            "created": self.created_at,
            "updated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "generation_config": self.generation_config,
        }
        if self.response_format is not None:
            found["response_format"] = self.response_format
        if self.previous_id:
            found["previous_interaction_id"] = self.previous_id
        if self.errors:
            found["errors"] = self.errors
        if content is not None:
            found["steps"] = [{"type": "model_output", "content": [content]}]
        return found

    def summary(self) -> dict[str, Any]:
        """What a test may check: the task, the clip's length and shape, the edit chain."""
        return {
            "id": self.id,
            "model": self.model,
            "backend": self.backend,
            "status": self.status,
            "task": self.plan_task,
            "seconds": self.seconds,
            "aspect": self.aspect,
            "resolution": self.resolution,
            "previous_interaction_id": self.previous_id,
            "variant": self.variant,
            "stored": self.stored,
        }


def failure_of(s: Scenario) -> list[dict[str, Any]] | None:
    """The `errors` of a failed interaction as a scenario scripts it (safety, a prompt block, an
    operation error), or None."""
    if s.block_reason:
        return [{"code": s.block_reason, "message": f"The prompt was blocked ({s.block_reason})."}]
    if s.rai_filtered:
        message = VEO_RAI_MESSAGE if s.rai_filtered == IMAGEN_RAI_MESSAGE else str(s.rai_filtered)
        return [{"code": "SAFETY", "message": message}]
    if s.finish_reason and s.finish_reason not in ("STOP", "FINISH_REASON_UNSPECIFIED"):
        return [{"code": s.finish_reason, "message": f"Generation stopped: {s.finish_reason}."}]
    if s.op_error:
        code = s.op_error.get("code")
        name = RPC_NAMES.get(code, str(code)) if isinstance(code, int) else str(code)
        return [{"code": name, "message": str(s.op_error.get("message") or "Video generation failed.")}]
    return None


def video_content(data_b64: str | None = None, uri: str | None = None) -> dict[str, Any]:
    """A model_output video block: inline base64 data, or a URI to fetch it from."""
    if uri is not None:
        return {"type": "video", "mime_type": "video/mp4", "uri": uri}
    return {"type": "video", "mime_type": "video/mp4", "data": data_b64 or ""}
