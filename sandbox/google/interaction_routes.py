"""The fake Google's Interactions API (Gemini Omni) and models.list / models.get answers, as a part of
`FakeGoogleServer` (a mixin: it uses the server's scripting, records and error answers).

- `POST /{v}/interactions` (`createInteraction`): an unknown or retired model id -> 404 NOT_FOUND;
  the scenario's latency and HTTP errors (`http_error`, `fail_first`, markers in the prompt); an
  unknown, forgotten or unstored `previous_interaction_id` -> 404 naming the interaction (one still
  running -> 400 FAILED_PRECONDITION); Google's field checks (`interactions.check`) -> 400; else an
  interaction `in_progress` (with `background: true`; without, it is answered finished at once).
- `GET /{v}/interactions/{id}` (`getInteraction`): the poll knobs of the scenario (`poll_http_error`,
  `poll_fail_first`, `op_polls`, `op_seconds`, `op_never_done`); once done it is `completed` with a
  real MP4 (`fake_video`, with a sound track; each edit of an edit a different colour variant), or
  `failed` with `errors` (safety, a prompt block, `op_error`); `video_uri` answers a URI instead.
- `DELETE /{v}/interactions/{id}` (`deleteInteraction`): forgets it.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiohttp import web

from . import catalogue, interactions
from .interactions import Interaction
from .media import b64_cached, fake_video
from .records import prompt_of

_INTERACTION_ACTIONS = {
    ("POST", False): "createInteraction",
    ("GET", True): "getInteraction",
    ("DELETE", True): "deleteInteraction",
}


class InteractionRoutes:
    """Interactions and the model list of `FakeGoogleServer`."""

    _interactions: dict[str, Interaction]
    models: dict[str, tuple[tuple[str, ...], str, str]]
    retired: set[str]

    # ---- scripting ---------------------------------------------------------------------
    def add_model(self, model: str, backends: tuple[str, ...] = catalogue.BOTH, kind: str = "interactions") -> None:
        """Know a model id: models.list lists it, interactions accept it (other calls take any id)."""
        self.models[model] = (tuple(backends), model, kind)

    def known_models(self, backend: str = "gemini") -> list[str]:
        """The ids models.list answers on a backend: the known ones minus the retired, sorted."""
        return sorted(m for m, (where, _, _) in self.models.items() if backend in where and m not in self.retired)

    def interaction(self, interaction_id: str) -> dict[str, Any] | None:
        """What the server keeps of an interaction (status, task, seconds, aspect, resolution, the
        previous interaction, stored, variant), or None if it does not know it."""
        found = self._interactions.get(interaction_id)
        return found.summary() if found is not None else None

    @property
    def interaction_count(self) -> int:
        return len(self._interactions)

    def forget_interaction(self, interaction_id: str) -> bool:
        """Forget an interaction (as Google does once it expires): a later get or edit of it is a 404."""
        return self._interactions.pop(interaction_id, None) is not None

    # ---- routes ------------------------------------------------------------------------
    def _interaction_model(self, body: Any, interaction_id: str | None) -> str | None:
        """The model id a request is recorded under: the body's, or the known interaction's."""
        if interaction_id:
            found = self._interactions.get(interaction_id)
            return found.model if found is not None else None
        model = body.get("model") if isinstance(body, dict) else None
        return str(model).removeprefix("models/") if model else None

    def _models_answer(
        self, action: str, model: str | None, backend: str, version: str, query: Any, *, tuned: bool
    ) -> web.Response:
        if tuned:  # Vertex's project-scoped `models` are tuned models: this server has none
            return web.json_response({"models": []}) if action == "listModels" else self._error(404, "Model not found.")
        if action == "getModel":
            where, display, kind = self.models.get(model or "", ((), "", ""))
            if backend not in where or model in self.retired:
                resource = f"publishers/google/models/{model}"
                return self._not_found(model or "", backend, version, "get", resource)
            return web.json_response(catalogue.model_entry(model or "", backend, display, kind))
        entries = [catalogue.model_entry(m, backend, *self.models[m][1:]) for m in self.known_models(backend)]
        return web.json_response(catalogue.list_page(entries, backend, query.get("pageSize"), query.get("pageToken")))

    async def _interactions_answer(
        self, action: str, model: str | None, interaction_id: str, version: str, backend: str, body: Any
    ) -> web.Response:
        if action == "getInteraction":
            return await self._get_interaction(interaction_id)
        if action == "deleteInteraction":
            if not self.forget_interaction(interaction_id):
                return self._error(404, f"Interaction {interaction_id} was not found.")
            return web.json_response({})
        return await self._create_interaction(model or "", version, backend, body if isinstance(body, dict) else {})

    async def _create_interaction(self, model: str, version: str, backend: str, body: dict[str, Any]) -> web.Response:
        where = self.models.get(model, ((), "", ""))[0]
        if not model or backend not in where or model in self.retired:
            return self._not_found(model, backend, version, "createInteraction", f"publishers/google/models/{model}")
        prompt = prompt_of("createInteraction", body)
        scenario = self.scenario_for(model, prompt, self._next_queued(model))
        if scenario.latency:
            await asyncio.sleep(scenario.latency)
        scripted = self._scripted_error("createInteraction", model, prompt, scenario)
        if scripted is not None:
            return scripted
        previous = None
        previous_id = body.get("previous_interaction_id")
        if previous_id:
            previous = self._interactions.get(str(previous_id))
            if previous is None or not previous.stored:
                message = f"Interaction {previous_id} was not found. It may have expired or been deleted."
                return self._error(404, message)
            if previous.status != "completed":
                message = f"The previous interaction {previous_id} has not completed (status: {previous.status})."
                return self._error(400, message, status_name="FAILED_PRECONDITION")
        plan = interactions.check(body, backend, self.aspect_ratios_for("createInteraction", model), previous)
        if isinstance(plan, str):
            return self._error(400, plan)
        interaction_id = f"v1_{next(self._ids):06d}{uuid.uuid4().hex[:16]}"
        interaction = Interaction(interaction_id, model, backend, body, plan, scenario)
        if previous is not None and plan.task == "edit":
            interaction.variant = previous.variant + 1
        self._interactions[interaction_id] = interaction
        if body.get("background") is True:
            return web.json_response(interaction.resource())
        interaction.finish()
        return web.json_response(await self._finished(interaction))

    async def _get_interaction(self, interaction_id: str) -> web.Response:
        interaction = self._interactions.get(interaction_id)
        if interaction is None:
            return self._error(404, f"Interaction {interaction_id} was not found.")
        s = interaction.scenario
        if s.latency:
            await asyncio.sleep(s.latency)
        if s.poll_http_error and not s.poll_fail_first:
            return self._error(s.poll_http_error)
        if s.poll_fail_first and interaction.poll_failures < s.poll_fail_first:
            interaction.poll_failures += 1
            return self._error(s.poll_http_error or 503)
        interaction.polls += 1
        if interaction.status == "in_progress" and interaction.is_done():
            interaction.finish()
        if interaction.status == "in_progress":
            return web.json_response(interaction.resource())
        return web.json_response(await self._finished(interaction))

    async def _finished(self, interaction: Interaction) -> dict[str, Any]:
        """A finished interaction's JSON: its errors, or its video inline (or at a URI)."""
        if interaction.status != "completed":
            return interaction.resource()
        if interaction.scenario.video_uri:
            uri = f"{self.base_url}/fake/videos/{interaction.id}.mp4"
            return interaction.resource(interactions.video_content(uri=uri))
        video = await self._interaction_video(interaction)
        return interaction.resource(interactions.video_content(b64_cached(video)))

    async def _interaction_video(self, interaction: Interaction) -> bytes:
        args = (interaction.aspect, interaction.seconds, True, interaction.variant)
        video = await asyncio.get_running_loop().run_in_executor(None, fake_video, *args)
        self.mark_produced(video)
        return video
