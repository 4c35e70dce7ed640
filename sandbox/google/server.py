"""A fake Google generative AI endpoint that the real google-genai SDK talks to.

Point the SDK at it with `http_options=types.HttpOptions(base_url=server.base_url)` (or the
GOOGLE_GEMINI_BASE_URL / GOOGLE_VERTEX_BASE_URL environment variables). Paths served (`{v}` is any
`v1*` version; the SDK uses `v1` for the Gemini API and `v1beta1` for Vertex AI):

- `POST /{v}/models/{m}:generateContent`                                   Gemini API
- `POST /{v}/publishers/google/models/{m}:generateContent`                  Vertex express mode
- `POST /{v}/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent`   Vertex
- `POST .../{m}:predict`                (Imagen: shut down, answered 404 NOT_FOUND in Google's words)
- `POST .../{m}:predictLongRunning`     (Veo, same three prefixes) -> an operation name
- `POST .../{m}:fetchPredictOperation`  (Vertex polling; body {"operationName": ...})
- `GET  /{v}/{operation name}`          (Gemini API polling, e.g. /v1/models/{m}/operations/{id})
- `GET  /{v}/files/{id}:download` and `/download/{v}/files/{id}:download` (Gemini API video files)
- `GET  /fake/videos/{op or interaction id}.mp4` (the `video_uri` mode of operations and interactions)
- `POST /{v}/interactions`, `GET|DELETE /{v}/interactions/{id}` (Gemini Omni; Vertex also under
  `/{v}/projects/{p}/locations/{l}/`): see `interactions`. An interaction runs like an operation
  (the same `op_polls` / `op_seconds` / `op_never_done` knobs), then answers a real MP4 with a sound
  track; completed ones are remembered (`interaction(id)`) for edits and extensions until
  `forget_interaction(id)`, a DELETE or `reset()`.
- `GET  /{v}/models` (Gemini API) and `GET /{v}/publishers/google/models` (Vertex): `models.list`,
  the known ids (`catalogue`, `add_model`) minus the retired ones; `GET .../models/{m}`: `models.get`.

Answers are real media: a small PNG (Pillow; with input images it carries one stripe per input
image, tinted with that image's mean colour, and PNG text chunks `fake-inputs`, `fake-aspect`,
`fake-size`; imageSize 2K / 4K doubles / quadruples its side) and a small H.264 MP4 (imageio-ffmpeg;
generated once per aspect ratio and cached; 1 s, or for an extension the source's length + 7 s).

Google's field checks (see `validation`, `interactions`) answer 400 INVALID_ARGUMENT: an aspect
ratio or image size the model lacks, Veo's references with a frame or video, a last frame without a
first, more than 3 references, 1080p/4k or references with a duration other than 8, the extension of
a video this server did not make (it keeps the hashes of those it answered) or at a resolution other
than 720p; Omni's limits (see `interactions`). A retired model (`retire_model`) answers 404 NOT_FOUND
in Google's words; so does an interaction with a model id the server does not know (`add_model`), or
with a `previous_interaction_id` it does not know (or forgot).

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
import collections
import itertools
import json
import logging
import re
import time
import uuid
from typing import Any

from aiohttp import web

from sandbox.threads import ServerThread

from . import catalogue, validation
from .answers import image_content, text_content
from .errors import error_body
from .interaction_routes import _INTERACTION_ACTIONS, InteractionRoutes
from .interactions import Interaction
from .media import b64_cached, fake_video, video_seconds
from .records import (
    RecordedRequest,
    instance_of,
    is_text_request,
    media_of,
    prompt_of,
)
from .scenarios import BASE_SCENARIO, IMAGEN_RAI_MESSAGE, VEO_RAI_MESSAGE, Scenario, parse_markers

logger = logging.getLogger(__name__)

EXTENSION_SECONDS = 7  # what a Veo extension adds to the clip

# --------------------------------------------------------------------------------------------
# Operations
# --------------------------------------------------------------------------------------------


class _Operation:
    """Per-operation state, kept small (the benchmark keeps thousands in flight)."""

    __slots__ = (
        "aspect",
        "backend",
        "created",
        "id",
        "model",
        "name",
        "poll_failures",
        "polls",
        "scenario",
        "seconds",
        "version",
    )

    def __init__(
        self,
        op_id: str,
        name: str,
        model: str,
        backend: str,
        version: str,
        aspect: str | None,
        scenario: Scenario,
        seconds: int = 1,
    ) -> None:
        self.id = op_id
        self.name = name
        self.model = model
        self.backend = backend
        self.version = version
        self.aspect = aspect
        self.scenario = scenario
        self.seconds = seconds  # the answer's length: 1, or an extension's source + 7
        self.created = time.monotonic()
        self.polls = 0
        self.poll_failures = 0

    def is_done(self) -> bool:
        return self.scenario.run_done(polls=self.polls, age=time.monotonic() - self.created)


_MODEL_ACTION = re.compile(
    r"^/(?P<version>v1[a-z0-9]*)/(?P<resource>(?:projects/[^/]+/locations/[^/]+/)?(?:publishers/[^/]+/)?"
    r"models/(?P<model>[^/:]+)):(?P<action>generateContent|predict|predictLongRunning|fetchPredictOperation)$"
)
_OPERATION = re.compile(r"^/(?P<version>v1[a-z0-9]*)/(?P<name>(?:.+/)?operations/(?P<op>[^/:]+))$")
_FILE_DOWNLOAD = re.compile(r"^/(?:download/)?(?P<version>v1[a-z0-9]*)/files/(?P<file>[^/:]+):download$")
_FAKE_VIDEO = re.compile(r"^/fake/videos/(?P<op>[^/.]+)\.mp4$")
_INTERACTIONS = re.compile(
    r"^/(?P<version>v1[a-z0-9]*)/(?P<scope>projects/[^/]+/locations/[^/]+/)?interactions(?:/(?P<id>[^/:]+))?$"
)
_MODELS = re.compile(
    r"^/(?P<version>v1[a-z0-9]*)/(?P<scope>projects/[^/]+/locations/[^/]+/)?(?P<publisher>publishers/google/)?"
    r"models(?:/(?P<model>[^/:]+))?$"
)


# --------------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------------


class FakeGoogleServer(InteractionRoutes):
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
        self.model_aspect_ratios: dict[str, tuple[str, ...]] = {}
        self.retired: set[str] = set()
        self._produced: set[str] = set()  # hashes of the videos this server answered (extendable)
        self.counts: collections.Counter[str] = collections.Counter()
        self._records: collections.deque[RecordedRequest] = collections.deque(maxlen=max_records)
        self._operations: dict[str, _Operation] = {}
        self._interactions: dict[str, Interaction] = {}
        self.models: dict[str, tuple[tuple[str, ...], str, str]] = dict(catalogue.MODELS)
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

    def retire_model(self, model: str) -> None:
        """Answer every generation call of this model id with Google's 404 NOT_FOUND for a retired
        (or unknown) model, worded per backend, and leave it out of models.list.
        `set_model_scenario(model, Scenario.error(404, ...))` does the same with a message of your own."""
        self.retired.add(model)

    def set_model_aspect_ratios(self, model: str, ratios: list[str] | tuple[str, ...] | None) -> None:
        """The aspect ratios a model id accepts (None: the defaults of its family, see validation)."""
        if ratios is None:
            self.model_aspect_ratios.pop(model, None)
        else:
            self.model_aspect_ratios[model] = tuple(ratios)

    def aspect_ratios_for(self, action: str, model: str) -> tuple[str, ...]:
        return self.model_aspect_ratios.get(model) or validation.default_aspect_ratios(action, model)

    def mark_produced(self, data: bytes) -> None:
        """Count a video as made by this server, so it may be extended."""
        self._produced.add(validation.video_hash(data))

    def produced(self, data: bytes) -> bool:
        return validation.video_hash(data) in self._produced

    def add_marker(self, word: str, scenario: Scenario) -> None:
        """Apply `scenario` when the prompt contains `[[word]]`."""
        self.markers[word.lower()] = scenario

    def reset(self) -> None:
        """Forget records, counters, operations, interactions and scripts, and know the catalogue's
        models again (not the default scenario)."""
        self._records.clear()
        self.counts.clear()
        self._operations.clear()
        self._failures.clear()
        self.model_scenarios.clear()
        self.markers.clear()
        self._queues.clear()
        self.model_aspect_ratios.clear()
        self.retired.clear()
        self._produced.clear()
        self._interactions.clear()
        self.models = dict(catalogue.MODELS)

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

    def video_bytes(self, aspect: str | None = "16:9", seconds: int = 1) -> bytes:
        """The MP4 this server answers for an aspect ratio (an extension: `seconds` long)."""
        return fake_video(aspect, seconds)

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
        elif m := _INTERACTIONS.match(path):
            version, resource = m["version"], m["id"] or ""
            backend = "vertex" if m["scope"] or version == "v1beta1" else "gemini"
            action = _INTERACTION_ACTIONS.get((request.method, bool(m["id"])), "unknown")
            model = self._interaction_model(body, m["id"])
        elif request.method == "GET" and (m := _MODELS.match(path)):
            version, model, resource = m["version"], m["model"], path
            backend = "vertex" if m["publisher"] or m["scope"] or version == "v1beta1" else "gemini"
            action = "getModel" if model else "listModels"
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
        if action in ("listModels", "getModel"):
            tuned = bool(m["scope"] and not m["publisher"])
            return self._models_answer(action, model, backend, version, request.query, tuned=tuned)
        if action in ("createInteraction", "getInteraction", "deleteInteraction"):
            return await self._interactions_answer(action, model, resource, version, backend, body)
        if action in ("fetchPredictOperation", "getOperation"):
            name = (body or {}).get("operationName") if action == "fetchPredictOperation" else resource
            return await self._poll(str(name or ""))

        if model in self.retired or action == "predict":  # Imagen's `:predict`: Imagen 4 is shut down
            return self._not_found(model, backend, version, action, resource)
        prompt = prompt_of(action, body)
        scenario = self.scenario_for(model, prompt, self._next_queued(model))
        if scenario.latency:
            await asyncio.sleep(scenario.latency)
        scripted = self._scripted_error(action, model, prompt, scenario)
        if scripted is not None:
            return scripted

        refusal = self._refusal(action, model, body)
        if refusal:
            return self._error(400, refusal)
        if action == "generateContent":
            if is_text_request(body):
                return web.json_response(text_content(model, body, prompt, scenario))
            return await self._generate_content(model, body, prompt, scenario)
        return self._predict_long_running(model, resource, version, backend, body, scenario)

    def _not_found(self, model: str, backend: str, version: str, action: str, resource: str) -> web.Response:
        """Google's 404 NOT_FOUND for a model id it does not know (any more)."""
        if backend == "vertex" and not resource.startswith("projects/"):  # Google names the project
            resource = f"projects/{self.vertex_project}/locations/{self.vertex_location}/{resource}"
        return self._error(404, _not_found_message(model, backend, version, action, resource))

    def _scripted_error(self, action: str, model: str | None, prompt: str, s: Scenario) -> web.Response | None:
        """The HTTP error a scenario scripts for this call (`http_error`, `fail_first`), or None."""
        if not (s.http_error or s.fail_first):
            return None
        if s.fail_first:
            key3 = (action, model or "", prompt)
            if self._failures[key3] >= s.fail_first:
                return None
            self._failures[key3] += 1
        return self._error(s.http_error or 503, s.error_message, retry_delay=s.retry_delay)

    def _refusal(self, action: str, model: str, body: Any) -> str | None:
        """Why Google would refuse this call's fields (answered 400 INVALID_ARGUMENT), or None."""
        ratios = self.aspect_ratios_for(action, model)
        if action == "generateContent":
            return None if is_text_request(body) else validation.check_generate_content(model, body, ratios)
        return validation.check_veo(body, ratios, self._produced)

    def _error(
        self,
        status: int,
        message: str | None = None,
        *,
        retry_delay: float | None = None,
        details: list[dict[str, Any]] | None = None,
        status_name: str | None = None,
    ) -> web.Response:
        body = error_body(status, message, retry_delay=retry_delay, details=details, status_name=status_name)
        return web.json_response(body, status=status)

    async def _generate_content(self, model: str, body: Any, prompt: str, s: Scenario) -> web.Response:
        loop = asyncio.get_running_loop()
        payload = await loop.run_in_executor(None, image_content, model, body, prompt, s, self.image_long_side)
        return web.json_response(payload)

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
        seconds = 1
        source = media_of(instance_of(body).get("video"))
        if source is not None:  # an extension: the whole clip comes back, the source and 7 s more
            seconds = round(video_seconds(source[1]) or 1) + EXTENSION_SECONDS
        self._operations[op_id] = _Operation(op_id, name, model, backend, version or "v1beta1", aspect, s, seconds)
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
            video = await self._video(op)
            response["videos"] = [{"bytesBase64Encoded": b64_cached(video), "mimeType": "video/mp4"}]
        return web.json_response({"name": op.name, "done": True, "response": response})

    async def _download(self, match: re.Match[str]) -> web.Response:
        groups = match.groupdict()
        key = groups.get("op") or groups.get("file") or ""
        op = self._operations.get(key) or self._interactions.get(key)
        if op is None:
            return self._error(404, "File not found.")
        if op.scenario.download_error:
            return self._error(op.scenario.download_error)
        video = await (self._video(op) if isinstance(op, _Operation) else self._interaction_video(op))
        return web.Response(body=video, content_type="video/mp4")

    async def _video(self, op: _Operation) -> bytes:
        video = await asyncio.get_running_loop().run_in_executor(None, fake_video, op.aspect, op.seconds)
        self._produced.add(_hash_cached(video))
        return video


def _not_found_message(model: str, backend: str, version: str, action: str, resource: str) -> str:
    """Google's words for a model id it does not know (any more)."""
    if backend == "gemini":
        return (
            f"models/{model} is not found for API version {version}, or is not supported for {action}. "
            "Call ListModels to see the list of available models and their supported methods."
        )
    return (
        f"Publisher Model `{resource}` was not found or your project does not have access to it. "
        "Please ensure you are using a valid model version."
    )


_hash_cache: dict[int, str] = {}


def _hash_cached(data: bytes) -> str:
    """The hash of one of the (few, cached) fake videos, computed once each."""
    found = _hash_cache.get(id(data))
    if found is None:
        found = _hash_cache[id(data)] = validation.video_hash(data)
    return found


def _veo_reason(s: Scenario) -> str:
    return VEO_RAI_MESSAGE if s.rai_filtered == IMAGEN_RAI_MESSAGE else str(s.rai_filtered)
