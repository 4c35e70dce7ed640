"""A fake Google generative AI endpoint that the real google-genai SDK talks to.

Point the SDK at it with `http_options=types.HttpOptions(base_url=server.base_url)` (or the
GOOGLE_GEMINI_BASE_URL / GOOGLE_VERTEX_BASE_URL environment variables). Paths served (`{v}` is any
`v1*` version; the SDK uses `v1` for the Gemini API and `v1beta1` for Vertex AI):

- `POST /{v}/models/{m}:generateContent`                                   Gemini API
- `POST /{v}/publishers/google/models/{m}:generateContent`                  Vertex express mode
- `POST /{v}/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent`   Vertex
- `POST .../{m}:predict`                (Imagen, same three prefixes)
- `POST .../{m}:predictLongRunning`     (Veo, same three prefixes) -> an operation name
- `POST .../{m}:fetchPredictOperation`  (Vertex polling; body {"operationName": ...})
- `GET  /{v}/{operation name}`          (Gemini API polling, e.g. /v1/models/{m}/operations/{id})
- `GET  /{v}/files/{id}:download` and `/download/{v}/files/{id}:download` (Gemini API video files)
- `GET  /fake/videos/{op id}.mp4`       (the `video_uri` mode of Vertex operations)

Answers are real media: a small PNG (Pillow; with input images it carries one stripe per input
image, tinted with that image's mean colour, and PNG text chunks `fake-inputs`, `fake-aspect`) and a
small H.264 MP4 (imageio-ffmpeg; generated once per aspect ratio and cached).

Outcomes are scripted per model id (`set_model_scenario`), call by call per model id
(`queue_scenarios(model, [None, Scenario.safety(), None])`: one entry per call, None = normal), by
markers in the prompt (`[[safety]]`, `[[error:429]]`, ... see `parse_markers`), by custom marker
words (`add_marker`), or server-wide (`default`). Every request is recorded (`requests`,
`requests_for`, `last`).

A generateContent call without IMAGE in `generationConfig.responseModalities` is a text model's
(e.g. a Gemini text model rewriting a prompt): it answers one text part, "Improved: " + the last
user text (or `Scenario.text`), with the same safety scripting (block_reason, finish_reason).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import dataclasses
import hashlib
import io
import itertools
import json
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from sandbox.threads import ServerThread

logger = logging.getLogger(__name__)

GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
DEFAULT_MESSAGES = {
    400: "Request contains an invalid argument.",
    401: "Request had invalid authentication credentials.",
    403: "The caller does not have permission.",
    404: "Publisher model was not found or your project does not have access to it.",
    429: "Resource exhausted. Please try again later.",
    500: "Internal error encountered.",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline exceeded.",
}
IMAGEN_RAI_MESSAGE = (
    "Unable to show generated images. All images were filtered out because they violated Vertex AI's "
    "usage guidelines. You will not be charged for blocked images. Try rephrasing the prompt. If you "
    "think this was an error, send feedback. Support codes: 39322892, 29310472"
)
VEO_RAI_MESSAGE = (
    "Unable to generate videos because the prompt or image violated Vertex AI's usage guidelines. "
    "Support codes: 58061214"
)


# --------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """How the fake answers. `None` fields fall through: prompt markers > model > server default.

    Errors: `http_error` (answer every matching call with this status and Google's error body),
    `fail_first` (only the first N calls with the same model+prompt fail, with `http_error` or 503),
    `error_message`, `retry_delay` (RetryInfo seconds for 429), `latency` (seconds, every call).
    generateContent: `finish_reason` (candidate without content), `block_reason` (promptFeedback,
    no candidates), `text_only` (STOP with text and no image), `text` (extra text part).
    Imagen / Veo: `rai_filtered` (message; Imagen predictions with only raiFilteredReason, Veo
    raiMediaFilteredCount/Reasons and no videos).
    Operations: `op_polls` (done at the N-th poll; 0 = no poll limit), `op_seconds` (done T s after
    creation), `op_never_done`, `op_error` ({code, message}), `poll_http_error`, `poll_fail_first`,
    `video_uri` (finished op returns a URI on this server), `download_error` (that URI's status).
    """

    http_error: int | None = None
    error_message: str | None = None
    retry_delay: float | None = None
    fail_first: int | None = None
    latency: float | None = None
    finish_reason: str | None = None
    block_reason: str | None = None
    text_only: bool | None = None
    text: str | None = None
    rai_filtered: str | None = None
    op_polls: int | None = None
    op_seconds: float | None = None
    op_never_done: bool | None = None
    op_error: dict[str, Any] | None = None
    poll_http_error: int | None = None
    poll_fail_first: int | None = None
    video_uri: bool | None = None
    download_error: int | None = None

    def merged(self, over: Scenario | None) -> Scenario:
        """This scenario with every non-None field of `over` applied on top."""
        if over is None:
            return self
        changes = {f.name: getattr(over, f.name) for f in dataclasses.fields(over) if getattr(over, f.name) is not None}
        return dataclasses.replace(self, **changes) if changes else self

    # Shorthands -------------------------------------------------------------------------
    @classmethod
    def error(cls, status: int, message: str | None = None, *, retry_delay: float | None = None) -> Scenario:
        return cls(http_error=status, error_message=message, retry_delay=retry_delay)

    @classmethod
    def safety(cls, finish_reason: str = "IMAGE_SAFETY") -> Scenario:
        return cls(finish_reason=finish_reason, rai_filtered=IMAGEN_RAI_MESSAGE)

    @classmethod
    def slow(cls, *, polls: int = 0, seconds: float | None = None) -> Scenario:
        return cls(op_polls=polls, op_seconds=seconds)


BASE_SCENARIO = Scenario(op_polls=2)  # a video is done at the second poll unless scripted otherwise

_MARKER = re.compile(r"\[\[([a-zA-Z_]+)(?::([^\]]*))?\]\]")


def parse_markers(prompt: str, custom: dict[str, Scenario] | None = None) -> Scenario | None:
    """The scenario asked for by `[[marker]]` / `[[marker:arg]]` words in a prompt.

    `[[safety]]` (IMAGE_SAFETY / Imagen and Veo RAI filter), `[[finish:REASON]]`, `[[blocked]]` /
    `[[block:REASON]]` (promptFeedback), `[[no_image]]` (finish NO_IMAGE), `[[text_only]]`,
    `[[rai]]` / `[[rai:message]]`, `[[error:CODE]]`, `[[fail_first:N]]` (503 unless `[[error:...]]`),
    `[[retry_after:S]]`, `[[latency:S]]`, `[[polls:N]]`, `[[seconds:T]]`, `[[never]]`,
    `[[op_error]]` / `[[op_error:CODE]]`, `[[poll_error:CODE]]`, `[[poll_fail_first:N]]`,
    `[[video_uri]]`, `[[download_error:CODE]]`; plus custom words registered with `add_marker`.
    """
    values: dict[str, Any] = {}
    result: Scenario | None = None
    for match in _MARKER.finditer(prompt or ""):
        name, arg = match.group(1).lower(), match.group(2)
        if custom and name in custom:
            result = (result or Scenario()).merged(custom[name])
            continue
        if name == "safety":
            values.update(finish_reason="IMAGE_SAFETY", rai_filtered=arg or IMAGEN_RAI_MESSAGE)
        elif name == "finish" and arg:
            values["finish_reason"] = arg.upper()
        elif name in ("blocked", "block"):
            values["block_reason"] = (arg or "PROHIBITED_CONTENT").upper()
        elif name == "no_image":
            values["finish_reason"] = "NO_IMAGE"
        elif name == "text_only":
            values["text_only"] = True
        elif name == "rai":
            values["rai_filtered"] = arg or IMAGEN_RAI_MESSAGE
        elif name == "error" and arg:
            values["http_error"] = int(arg)
        elif name == "fail_first" and arg:
            values["fail_first"] = int(arg)
        elif name == "retry_after" and arg:
            values["retry_delay"] = float(arg)
        elif name == "latency" and arg:
            values["latency"] = float(arg)
        elif name == "polls" and arg:
            values["op_polls"] = int(arg)
        elif name == "seconds" and arg:
            values.update(op_seconds=float(arg), op_polls=values.get("op_polls", 0))
        elif name == "never":
            values["op_never_done"] = True
        elif name == "op_error":
            code = int(arg) if arg else 13
            values["op_error"] = {"code": code, "message": f"Video generation failed (fake error {code})."}
        elif name == "poll_error" and arg:
            values["poll_http_error"] = int(arg)
        elif name == "poll_fail_first" and arg:
            values["poll_fail_first"] = int(arg)
        elif name == "video_uri":
            values["video_uri"] = True
        elif name == "download_error":
            values.update(video_uri=True, download_error=int(arg) if arg else 500)
    if values:
        result = (result or Scenario()).merged(Scenario(**values))
    return result


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    backend: str  # "gemini" | "vertex" | ""
    action: str  # generateContent | predict | predictLongRunning | fetchPredictOperation | getOperation | download
    model: str | None
    at: float = field(default_factory=time.time)

    @property
    def api_key(self) -> str | None:
        return self.headers.get("x-goog-api-key") or self.headers.get("X-Goog-Api-Key")

    @property
    def prompt(self) -> str:
        return _prompt_of(self.action, self.json)

    @property
    def input_images(self) -> list[tuple[str, bytes]]:
        """(mime type, bytes) of every image the SDK sent."""
        return _images_of(self.action, self.json)

    @property
    def generation_config(self) -> dict[str, Any]:
        return (self.json or {}).get("generationConfig") or {}

    @property
    def parameters(self) -> dict[str, Any]:
        return (self.json or {}).get("parameters") or {}

    @property
    def aspect_ratio(self) -> str | None:
        return _aspect_of(self.action, self.json)

    @property
    def is_text(self) -> bool:
        """A generateContent call to a text model (no image output asked for)."""
        return self.action == "generateContent" and is_text_request(self.json)


def b64decode_any(value: str) -> bytes:
    """Decode standard or URL-safe base64, padded or not (the SDK sends `inlineData` URL-safe)."""
    text = value.strip().replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _prompt_of(action: str, body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    if action == "generateContent":
        texts = []
        for content in body.get("contents") or []:
            for part in content.get("parts") or []:
                if isinstance(part, dict) and part.get("text"):
                    texts.append(part["text"])
        return "\n".join(texts)
    instances = body.get("instances") or [{}]
    return str((instances[0] or {}).get("prompt") or "")


def _images_of(action: str, body: Any) -> list[tuple[str, bytes]]:
    images: list[tuple[str, bytes]] = []
    if not isinstance(body, dict):
        return images
    if action == "generateContent":
        for content in body.get("contents") or []:
            for part in content.get("parts") or []:
                blob = part.get("inlineData") or part.get("inline_data") if isinstance(part, dict) else None
                if blob and blob.get("data"):
                    mime = blob.get("mimeType") or blob.get("mime_type") or ""
                    images.append((mime, b64decode_any(blob["data"])))
        return images
    for instance in body.get("instances") or []:
        for key in ("image", "lastFrame"):
            image = (instance or {}).get(key)
            if image and image.get("bytesBase64Encoded"):
                images.append((image.get("mimeType", ""), b64decode_any(image["bytesBase64Encoded"])))
    return images


TEXT_FINISH_REASONS = {"IMAGE_SAFETY": "SAFETY", "IMAGE_PROHIBITED_CONTENT": "PROHIBITED_CONTENT", "NO_IMAGE": "OTHER"}


def is_text_request(body: Any) -> bool:
    """A generateContent call to a text model: responseModalities absent or only TEXT."""
    if not isinstance(body, dict):
        return True
    modalities = (body.get("generationConfig") or {}).get("responseModalities") or []
    return all(str(m).upper() == "TEXT" for m in modalities)


def last_user_text(body: Any) -> str:
    """The last text part of the last user turn (a content without a role counts as the user's)."""
    if not isinstance(body, dict):
        return ""
    for content in reversed(body.get("contents") or []):
        if not isinstance(content, dict) or content.get("role", "user") not in ("user", None):
            continue
        for part in reversed(content.get("parts") or []):
            if isinstance(part, dict) and part.get("text"):
                return str(part["text"])
    return ""


def rewrite_text(text: str) -> str:
    """The fake text model's deterministic "rewrite" of a prompt."""
    return f"Improved: {text}"


def _aspect_of(action: str, body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    if action == "generateContent":
        return ((body.get("generationConfig") or {}).get("imageConfig") or {}).get("aspectRatio")
    return (body.get("parameters") or {}).get("aspectRatio")


# --------------------------------------------------------------------------------------------
# Media
# --------------------------------------------------------------------------------------------


def _ratio(aspect: str | None, default: tuple[int, int] = (1, 1)) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in str(aspect).split(":", 1))
        if w > 0 and h > 0:
            return w, h
    except (TypeError, ValueError):
        pass
    return default


def make_png(prompt: str, aspect: str | None, inputs: list[bytes], long_side: int = 64) -> bytes:
    """A small PNG: the prompt's colour, one stripe per input image (its mean colour), text chunks."""
    from PIL import Image, ImageDraw, PngImagePlugin

    w, h = _ratio(aspect)
    width = long_side if w >= h else max(1, round(long_side * w / h))
    height = long_side if h >= w else max(1, round(long_side * h / w))
    digest = hashlib.sha256(prompt.encode()).digest()
    image = Image.new("RGB", (width, height), tuple(digest[:3]))
    if inputs:
        draw = ImageDraw.Draw(image)
        stripe = max(1, width // len(inputs))
        for i, data in enumerate(inputs):
            try:
                with Image.open(io.BytesIO(data)) as im:
                    colour = im.convert("RGB").resize((1, 1)).getpixel((0, 0))
            except Exception:
                colour = (255, 0, 255)
            draw.rectangle((i * stripe, height // 2, (i + 1) * stripe - 1, height - 1), fill=colour)
    info = PngImagePlugin.PngInfo()
    info.add_text("fake-google", "1")
    info.add_text("fake-inputs", str(len(inputs)))
    info.add_text("fake-aspect", f"{w}:{h}")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


_video_cache: dict[str, bytes] = {}
_video_lock = threading.Lock()


def fake_video(aspect: str | None = "16:9") -> bytes:
    """A small real MP4 (1 s, 8 fps, 128x72 or 72x128), generated once per orientation."""
    key = "9:16" if _ratio(aspect, (16, 9))[0] < _ratio(aspect, (16, 9))[1] else "16:9"
    cached = _video_cache.get(key)
    if cached is not None:
        return cached
    with _video_lock:
        cached = _video_cache.get(key)
        if cached is None:
            import numpy as np

            from botapp.providers.demo import encode_mp4

            width, height = (128, 72) if key == "16:9" else (72, 128)
            frames = []
            for i in range(8):
                frame = np.zeros((height, width, 3), np.uint8)
                frame[..., 0] = 40 + i * 25
                frame[..., 2] = 200 - i * 20
                frame[:, : (i + 1) * width // 8, 1] = 220
                frames.append(frame)
            cached = encode_mp4(frames, fps=8)
            _video_cache[key] = cached
    return cached


# --------------------------------------------------------------------------------------------
# Operations
# --------------------------------------------------------------------------------------------


class _Operation:
    """Per-operation state, kept small (the benchmark keeps thousands in flight)."""

    __slots__ = ("aspect", "backend", "created", "id", "model", "name", "poll_failures", "polls", "scenario", "version")

    def __init__(
        self, op_id: str, name: str, model: str, backend: str, version: str, aspect: str | None, scenario: Scenario
    ) -> None:
        self.id = op_id
        self.name = name
        self.model = model
        self.backend = backend
        self.version = version
        self.aspect = aspect
        self.scenario = scenario
        self.created = time.monotonic()
        self.polls = 0
        self.poll_failures = 0

    def is_done(self) -> bool:
        s = self.scenario
        if s.op_never_done:
            return False
        if s.op_polls and self.polls < s.op_polls:
            return False
        return not (s.op_seconds and time.monotonic() - self.created < s.op_seconds)


_MODEL_ACTION = re.compile(
    r"^/(?P<version>v1[a-z0-9]*)/(?P<resource>(?:projects/[^/]+/locations/[^/]+/)?(?:publishers/[^/]+/)?"
    r"models/(?P<model>[^/:]+)):(?P<action>generateContent|predict|predictLongRunning|fetchPredictOperation)$"
)
_OPERATION = re.compile(r"^/(?P<version>v1[a-z0-9]*)/(?P<name>(?:.+/)?operations/(?P<op>[^/:]+))$")
_FILE_DOWNLOAD = re.compile(r"^/(?:download/)?(?P<version>v1[a-z0-9]*)/files/(?P<file>[^/:]+):download$")
_FAKE_VIDEO = re.compile(r"^/fake/videos/(?P<op>[^/.]+)\.mp4$")


# --------------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------------


class FakeGoogleServer:
    """The fake endpoint. Use `async with` (current loop) or `with` (background thread)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        default: Scenario | None = None,
        record: bool = True,
        max_records: int = 10_000,
        image_long_side: int = 64,
        expected_api_key: str | None = None,
        vertex_project: str = "fake-project",
        vertex_location: str = "us-central1",
    ) -> None:
        self.host = host
        self.port = port
        self.default = BASE_SCENARIO.merged(default)
        self.record = record
        self.image_long_side = image_long_side
        self.expected_api_key = expected_api_key
        self.vertex_project = vertex_project
        self.vertex_location = vertex_location
        self.model_scenarios: dict[str, Scenario] = {}
        self.markers: dict[str, Scenario] = {}
        self._queues: dict[str, collections.deque[Scenario | None]] = {}
        self.counts: collections.Counter[str] = collections.Counter()
        self._records: collections.deque[RecordedRequest] = collections.deque(maxlen=max_records)
        self._operations: dict[str, _Operation] = {}
        self._failures: collections.Counter[tuple[str, str, str]] = collections.Counter()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._thread: ServerThread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ---- scripting ---------------------------------------------------------------------
    def set_model_scenario(self, model: str, scenario: Scenario | None) -> None:
        """Script every request for a model id (None removes the script)."""
        if scenario is None:
            self.model_scenarios.pop(model, None)
        else:
            self.model_scenarios[model] = scenario

    def queue_scenarios(self, model: str, scenarios: list[Scenario | None]) -> None:
        """Script the next calls of a model one by one: the N-th call (generateContent, predict or
        predictLongRunning; polls do not count) takes the N-th entry, `None` = the normal answer.
        Once the queue is used up the model answers as scripted otherwise. Entries add to any
        `set_model_scenario` script; prompt markers still win."""
        self._queues.setdefault(model, collections.deque()).extend(scenarios)

    def queued_left(self, model: str) -> int:
        """How many queued scenarios of a model are not consumed yet."""
        return len(self._queues.get(model) or ())

    def _next_queued(self, model: str | None) -> Scenario | None:
        queue = self._queues.get(model or "")
        return queue.popleft() if queue else None

    def add_marker(self, word: str, scenario: Scenario) -> None:
        """Apply `scenario` when the prompt contains `[[word]]`."""
        self.markers[word.lower()] = scenario

    def reset(self) -> None:
        """Forget records, counters, operations and scripts (not the default scenario)."""
        self._records.clear()
        self.counts.clear()
        self._operations.clear()
        self._failures.clear()
        self.model_scenarios.clear()
        self.markers.clear()
        self._queues.clear()

    def scenario_for(self, model: str | None, prompt: str, queued: Scenario | None = None) -> Scenario:
        scenario = self.default.merged(self.model_scenarios.get(model or "")).merged(queued)
        return scenario.merged(parse_markers(prompt, self.markers))

    # ---- inspection --------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment variables that point a google-genai SDK (in any process) at this server."""
        return {"GOOGLE_GEMINI_BASE_URL": self.base_url, "GOOGLE_VERTEX_BASE_URL": self.base_url}

    @property
    def requests(self) -> list[RecordedRequest]:
        return list(self._records)

    def requests_for(self, action: str | None = None, model: str | None = None) -> list[RecordedRequest]:
        return [
            r
            for r in list(self._records)
            if (action is None or r.action == action) and (model is None or r.model == model)
        ]

    def last(self, action: str | None = None) -> RecordedRequest:
        found = self.requests_for(action)
        if not found:
            raise LookupError(f"no {action or ''} request recorded")
        return found[-1]

    @property
    def operation_count(self) -> int:
        return len(self._operations)

    def video_bytes(self, aspect: str | None = "16:9") -> bytes:
        """The MP4 this server answers for an aspect ratio (for assertions)."""
        return fake_video(aspect)

    # ---- lifecycle ---------------------------------------------------------------------
    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def start(self) -> FakeGoogleServer:
        """Start serving in the running event loop."""
        self._runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=4096, reuse_address=True)
        await site.start()
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            self.port = server.sockets[0].getsockname()[1]
        logger.info("fake Google server on %s", self.base_url)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeGoogleServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def start_in_thread(self, timeout: float = 10.0) -> FakeGoogleServer:
        """Start serving from a daemon thread with its own event loop."""
        self._thread = ServerThread(self, "fake-google")
        self._thread.start(timeout)
        self._loop = self._thread.loop
        return self

    def stop_thread(self, timeout: float = 10.0) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.stop(timeout)
        self._loop = None

    def __enter__(self) -> FakeGoogleServer:
        return self.start_in_thread()

    def __exit__(self, *exc: object) -> None:
        self.stop_thread()

    # ---- HTTP --------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        body: Any = None
        raw = await request.read()
        bad_json = False
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                bad_json = True
                body = raw.decode("utf-8", "replace")

        if m := _MODEL_ACTION.match(path):
            action, model, resource, version = m["action"], m["model"], m["resource"], m["version"]
            backend = (
                "vertex" if resource.startswith(("projects/", "publishers/")) or version == "v1beta1" else "gemini"
            )
        elif m := _OPERATION.match(path):
            action, model, resource, version = "getOperation", None, m["name"], m["version"]
            backend = "gemini" if resource.startswith("models/") and version != "v1beta1" else "vertex"
        elif (m := _FILE_DOWNLOAD.match(path)) or (m := _FAKE_VIDEO.match(path)):
            action, model, resource, version, backend = "download", None, path, "", ""
        else:
            action, model, resource, version, backend = "unknown", None, path, "", ""

        self.counts[action] += 1
        if self.record:
            self._records.append(
                RecordedRequest(
                    method=request.method,
                    path=path,
                    query=dict(request.query),
                    headers=dict(request.headers),
                    json=body,
                    backend=backend,
                    action=action,
                    model=model,
                )
            )

        if action == "unknown":
            return self._error(404, f"fake Google: no route for {request.method} {path}")
        if action != "download" and self.expected_api_key is not None:
            key = request.headers.get("x-goog-api-key")
            if not key:
                return self._error(403, "Method doesn't allow unregistered callers. Please use an API key.")
            if key != self.expected_api_key:
                return self._error(
                    400,
                    "API key not valid. Please pass a valid API key.",
                    details=[
                        {
                            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": "API_KEY_INVALID",
                            "domain": "googleapis.com",
                        }
                    ],
                )
        if bad_json:
            return self._error(400, "Invalid JSON payload received.")

        if action == "download":
            return await self._download(m)
        if action in ("fetchPredictOperation", "getOperation"):
            name = (body or {}).get("operationName") if action == "fetchPredictOperation" else resource
            return await self._poll(str(name or ""))

        prompt = _prompt_of(action, body)
        scenario = self.scenario_for(model, prompt, self._next_queued(model))
        if scenario.latency:
            await asyncio.sleep(scenario.latency)
        if scenario.http_error or scenario.fail_first:
            status = scenario.http_error or 503
            if scenario.fail_first:
                key3 = (action, model or "", prompt)
                if self._failures[key3] < scenario.fail_first:
                    self._failures[key3] += 1
                    return self._error(status, scenario.error_message, retry_delay=scenario.retry_delay)
            else:
                return self._error(status, scenario.error_message, retry_delay=scenario.retry_delay)

        if action == "generateContent":
            if is_text_request(body):
                return self._generate_text(model, body, prompt, scenario)
            return await self._generate_content(model, body, prompt, scenario)
        if action == "predict":
            return await self._predict(body, prompt, scenario)
        return self._predict_long_running(model, resource, version, backend, body, scenario)

    def _error(
        self,
        status: int,
        message: str | None = None,
        *,
        retry_delay: float | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> web.Response:
        error: dict[str, Any] = {
            "code": status,
            "message": message or DEFAULT_MESSAGES.get(status, "Error."),
            "status": GOOGLE_STATUS.get(status, "UNKNOWN"),
        }
        details = list(details or [])
        if status == 429 and retry_delay is not None:
            details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_delay:g}s"})
        if details:
            error["details"] = details
        return web.json_response({"error": error}, status=status)

    async def _generate_content(self, model: str, body: Any, prompt: str, s: Scenario) -> web.Response:
        images = [data for _, data in _images_of("generateContent", body)]
        usage = {
            "promptTokenCount": 8 + len(prompt) // 4 + 258 * len(images),
            "candidatesTokenCount": 0,
            "totalTokenCount": 0,
        }
        payload: dict[str, Any] = {"modelVersion": model, "responseId": uuid.uuid4().hex[:20], "usageMetadata": usage}
        if s.block_reason:
            payload["promptFeedback"] = {
                "blockReason": s.block_reason,
                "blockReasonMessage": f"The prompt was blocked ({s.block_reason}).",
            }
        elif s.finish_reason and s.finish_reason not in ("STOP", "FINISH_REASON_UNSPECIFIED"):
            payload["candidates"] = [
                {
                    "index": 0,
                    "finishReason": s.finish_reason,
                    "finishMessage": f"Generation stopped: {s.finish_reason}.",
                }
            ]
        elif s.text_only:
            payload["candidates"] = [
                {
                    "index": 0,
                    "finishReason": "STOP",
                    "content": {"role": "model", "parts": [{"text": s.text or "I can't draw that, sorry."}]},
                }
            ]
        else:
            png = await asyncio.get_running_loop().run_in_executor(
                None, make_png, prompt, _aspect_of("generateContent", body), images, self.image_long_side
            )
            parts: list[dict[str, Any]] = []
            if s.text:
                parts.append({"text": s.text})
            parts.append({"inlineData": {"mimeType": "image/png", "data": base64.b64encode(png).decode()}})
            payload["candidates"] = [{"index": 0, "finishReason": "STOP", "content": {"role": "model", "parts": parts}}]
            usage["candidatesTokenCount"] = 1290
        usage["totalTokenCount"] = usage["promptTokenCount"] + usage["candidatesTokenCount"]
        return web.json_response(payload)

    def _generate_text(self, model: str, body: Any, prompt: str, s: Scenario) -> web.Response:
        """A Gemini text model (no IMAGE in responseModalities): one candidate with one text part,
        `Scenario.text` or "Improved: " + the last user text part."""
        usage = {"promptTokenCount": 8 + len(prompt) // 4, "candidatesTokenCount": 0, "totalTokenCount": 0}
        payload: dict[str, Any] = {"modelVersion": model, "responseId": uuid.uuid4().hex[:20], "usageMetadata": usage}
        if s.block_reason:
            payload["promptFeedback"] = {
                "blockReason": s.block_reason,
                "blockReasonMessage": f"The prompt was blocked ({s.block_reason}).",
            }
        elif s.finish_reason and s.finish_reason not in ("STOP", "FINISH_REASON_UNSPECIFIED"):
            reason = TEXT_FINISH_REASONS.get(s.finish_reason, s.finish_reason)
            payload["candidates"] = [{"index": 0, "finishReason": reason, "finishMessage": f"Stopped: {reason}."}]
        else:
            text = s.text if s.text is not None else rewrite_text(last_user_text(body))
            payload["candidates"] = [
                {"index": 0, "finishReason": "STOP", "content": {"role": "model", "parts": [{"text": text}]}}
            ]
            usage["candidatesTokenCount"] = 1 + len(text) // 4
        usage["totalTokenCount"] = usage["promptTokenCount"] + usage["candidatesTokenCount"]
        return web.json_response(payload)

    async def _predict(self, body: Any, prompt: str, s: Scenario) -> web.Response:
        parameters = (body or {}).get("parameters") or {}
        count = int(parameters.get("sampleCount") or 1)
        if s.rai_filtered:
            if parameters.get("includeRaiReason"):
                return web.json_response({"predictions": [{"raiFilteredReason": s.rai_filtered}] * count})
            return web.json_response({})
        aspect = parameters.get("aspectRatio")
        loop = asyncio.get_running_loop()
        predictions = []
        for i in range(count):
            png = await loop.run_in_executor(None, make_png, f"{prompt}#{i}", aspect, [], self.image_long_side)
            predictions.append({"bytesBase64Encoded": base64.b64encode(png).decode(), "mimeType": "image/png"})
        return web.json_response({"predictions": predictions})

    def _predict_long_running(
        self, model: str, resource: str, version: str, backend: str, body: Any, s: Scenario
    ) -> web.Response:
        op_id = f"{next(self._ids):06d}{uuid.uuid4().hex[:10]}"
        if backend == "gemini":
            name = f"models/{model}/operations/{op_id}"
        else:
            if not resource.startswith("projects/"):  # express mode: Google answers a project-scoped name
                resource = (
                    f"projects/{self.vertex_project}/locations/{self.vertex_location}/publishers/google/models/{model}"
                )
            name = f"{resource}/operations/{op_id}"
        aspect = ((body or {}).get("parameters") or {}).get("aspectRatio")
        self._operations[op_id] = _Operation(op_id, name, model, backend, version or "v1beta1", aspect, s)
        return web.json_response({"name": name})

    async def _poll(self, name: str) -> web.Response:
        op_id = name.rsplit("/", 1)[-1]
        op = self._operations.get(op_id)
        if op is None or not name:
            return self._error(404, f"Operation {name!r} not found.")
        s = op.scenario
        if s.latency:
            await asyncio.sleep(s.latency)
        if s.poll_http_error and not s.poll_fail_first:
            return self._error(s.poll_http_error)
        if s.poll_fail_first and op.poll_failures < s.poll_fail_first:
            op.poll_failures += 1
            return self._error(s.poll_http_error or 503)
        op.polls += 1
        if not op.is_done():
            return web.json_response({"name": op.name, "metadata": {"fakePolls": op.polls}})
        if s.op_error:
            return web.json_response({"name": op.name, "done": True, "error": s.op_error})
        if op.backend == "gemini":
            inner: dict[str, Any]
            if s.rai_filtered:
                inner = {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": [_veo_reason(s)]}
            else:
                uri = f"{self.base_url}/{op.version}/files/{op.id}:download?alt=media"
                inner = {"generatedSamples": [{"video": {"uri": uri}}]}
            return web.json_response(
                {
                    "name": op.name,
                    "done": True,
                    "response": {
                        "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse",
                        "generateVideoResponse": inner,
                    },
                }
            )
        response: dict[str, Any] = {"@type": "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"}
        if s.rai_filtered:
            response.update(raiMediaFilteredCount=1, raiMediaFilteredReasons=[_veo_reason(s)])
        elif s.video_uri:
            response["videos"] = [{"gcsUri": f"{self.base_url}/fake/videos/{op.id}.mp4", "mimeType": "video/mp4"}]
        else:
            video = await self._video(op.aspect)
            response["videos"] = [{"bytesBase64Encoded": _b64_cached(video), "mimeType": "video/mp4"}]
        return web.json_response({"name": op.name, "done": True, "response": response})

    async def _download(self, match: re.Match[str]) -> web.Response:
        groups = match.groupdict()
        op = self._operations.get(groups.get("op") or groups.get("file") or "")
        if op is None:
            return self._error(404, "File not found.")
        if op.scenario.download_error:
            return self._error(op.scenario.download_error)
        video = await self._video(op.aspect)
        return web.Response(body=video, content_type="video/mp4")

    async def _video(self, aspect: str | None) -> bytes:
        return await asyncio.get_running_loop().run_in_executor(None, fake_video, aspect)


def _veo_reason(s: Scenario) -> str:
    return VEO_RAI_MESSAGE if s.rai_filtered == IMAGEN_RAI_MESSAGE else str(s.rai_filtered)


_b64_cache: dict[int, str] = {}


def _b64_cached(data: bytes) -> str:
    """Base64 of the (few, cached) fake videos, computed once each."""
    key = id(data)
    found = _b64_cache.get(key)
    if found is None:
        found = base64.b64encode(data).decode()
        _b64_cache[key] = found
    return found
