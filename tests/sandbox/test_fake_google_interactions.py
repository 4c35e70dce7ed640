"""The fake Google's Interactions API (Gemini Omni) and models.list, driven by the REAL google-genai SDK
over HTTP: the paths and bodies the SDK sends, Google's checks (400 / 404 in Google's words), the
poll knobs and scripted faults, the remembered interactions that edits and extensions refer to."""

from __future__ import annotations

import base64
import io

import httpx
import pytest
from google import genai
from google.genai import _interactions_errors as ierrors
from google.genai import types
from PIL import Image

from botapp.providers.media import probe_mp4
from sandbox.google import Scenario

KEY = "fake-key"
OMNI = "gemini-omni-1.2-flash"
NO_RETRIES = types.HttpRetryOptions(attempts=1)


def _client(server, **kw) -> genai.Client:
    options = types.HttpOptions(base_url=server.base_url, retry_options=NO_RETRIES)
    return genai.Client(api_key=KEY, http_options=options, **kw)


@pytest.fixture
def client(server):
    c = _client(server)
    yield c
    c.close()


@pytest.fixture
def vertex(server):
    c = _client(server, vertexai=True)
    yield c
    c.close()


def create(client, prompt: str = "a fox in the snow", fmt: dict | None = None, **over):
    args = {
        "model": OMNI,
        "input": [{"type": "text", "text": prompt}],
        "response_modalities": ["video"],
        "response_format": {
            "type": "video",
            "resolution": "720p",
            "duration": "4s",
            "aspect_ratio": "16:9",
            **(fmt or {}),
        },
        "background": True,
        "store": True,
    }
    args.update(over)
    return client.interactions.create(**args)


def finish(client, interaction_id: str, polls: int = 5):
    for _ in range(polls):
        found = client.interactions.get(interaction_id)
        if found.status != "in_progress":
            return found
    raise AssertionError("the interaction did not finish")


def video_block(data: bytes) -> dict:
    return {"type": "video", "data": base64.b64encode(data).decode(), "mime_type": "video/mp4"}


def image_block(colour: int = 1) -> dict:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (colour, 0, 0)).save(buffer, format="PNG")
    return {"type": "image", "data": base64.b64encode(buffer.getvalue()).decode(), "mime_type": "image/png"}


def refusal(call) -> dict:
    """The error of a call the fake refuses with 400: Google's `error` object."""
    with pytest.raises(ierrors.APIStatusError) as info:
        call()
    assert info.value.status_code == 400
    return info.value.body["error"]


# --------------------------------------------------------------------------------------------
# What the SDK sends and reads back
# --------------------------------------------------------------------------------------------


def test_create_then_get_on_the_gemini_api(server, client):
    created = create(client, generation_config={"seed": 7, "video_config": {"task": "text_to_video"}})
    assert created.status == "in_progress" and created.id.startswith("v1_")
    sent = server.last("createInteraction")
    assert (sent.method, sent.path, sent.backend, sent.model, sent.api_key) == (
        "POST",
        "/v1/interactions",
        "gemini",
        OMNI,
        KEY,
    )
    assert sent.json == {
        "model": OMNI,
        "background": True,
        "generation_config": {"seed": 7, "video_config": {"task": "text_to_video"}},
        "input": [{"type": "user_input", "content": [{"type": "text", "text": "a fox in the snow"}]}],
        "response_format": {"type": "video", "resolution": "720p", "duration": "4s", "aspect_ratio": "16:9"},
        "response_modalities": ["video"],
        "store": True,
    }
    assert sent.prompt == "a fox in the snow" and sent.video_task == "text_to_video"
    assert sent.response_format["duration"] == "4s" and sent.previous_interaction_id is None

    assert client.interactions.get(created.id).status == "in_progress"  # done at the 2nd poll
    done = client.interactions.get(created.id)
    assert done.status == "completed" and done.output_video.mime_type == "video/mp4"
    data = base64.b64decode(done.output_video.data)
    info = probe_mp4(data)
    assert info.duration == 4 and info.has_audio and (info.width, info.height) == (128, 72)
    assert server.produced(data)
    get = server.last("getInteraction")
    assert (get.method, get.path, get.query, get.model) == (
        "GET",
        f"/v1/interactions/{created.id}",
        {"stream": "false"},
        OMNI,
    )
    assert server.interaction(created.id)["status"] == "completed"


@pytest.mark.parametrize(
    ("project", "prefix"),
    [(None, "/v1beta1"), ("my-proj", "/v1beta1/projects/my-proj/locations/europe-west4")],
)
def test_vertex_paths(server, project, prefix):
    scope = {"project": project, "location": "europe-west4"} if project else {}
    c = _client(server, vertexai=True, **scope)
    created = create(c, fmt={"aspect_ratio": "9:16"})
    assert server.last("createInteraction").path == f"{prefix}/interactions"
    done = finish(c, created.id)
    assert server.last("getInteraction").path == f"{prefix}/interactions/{created.id}"
    assert probe_mp4(base64.b64decode(done.output_video.data)).height == 128
    assert server.interaction(created.id)["backend"] == "vertex"


def test_without_background_the_answer_is_finished(server, client):
    done = create(client, background=False)
    assert done.status == "completed" and done.output_video.data
    assert server.requests_for("getInteraction") == []


def test_video_uri_mode_is_downloadable(server, client):
    done = finish(client, create(client, "[[video_uri]]").id)
    assert done.output_video.uri.startswith(server.base_url + "/fake/videos/")
    assert probe_mp4(httpx.get(done.output_video.uri).content).has_audio


# --------------------------------------------------------------------------------------------
# Google's checks
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"fmt": {"duration": "2s"}}, "Unsupported duration: 2s. Supported durations: 3s to 15s."),
        ({"fmt": {"duration": "16s"}}, "Unsupported duration: 16s. Supported durations: 3s to 15s."),
        ({"fmt": {"duration": "eight"}}, "Invalid duration: 'eight'"),
        ({"fmt": {"resolution": "480p"}}, "Unsupported resolution: 480p. Supported values: 360p, 720p, 1080p, 4k."),
        ({"fmt": {"aspect_ratio": "1:1"}}, "Unsupported aspect ratio: 1:1. Supported values: 16:9, 9:16."),
        ({"response_modalities": ["text"]}, "This model only generates video"),
        ({"generation_config": {"video_config": {"task": "upscale"}}}, "Unsupported video task: upscale."),
        ({"images": 7}, "At most 6 images are supported per request, got 7."),
        (
            {"images": 2, "generation_config": {"video_config": {"task": "image_to_video"}}},
            "The image_to_video task takes exactly one image, got 2.",
        ),
        ({"generation_config": {"video_config": {"task": "edit"}}}, "The edit task needs a previous_interaction_id"),
        ({"generation_config": {"video_config": {"task": "extend"}}}, "The extend task needs a video"),
    ],
)
def test_refusals_are_400_invalid_argument(server, client, over, message):
    images = over.pop("images", 0)
    if images:
        over["input"] = [{"type": "text", "text": "x"}] + [image_block(i) for i in range(images)]
    error = refusal(lambda: create(client, **over))
    assert error["status"] == "INVALID_ARGUMENT" and error["code"] == 400
    assert error["message"].startswith(message)
    assert server.counts["createInteraction"] == 1 and server.interaction_count == 0


def test_six_references_are_fine(server, client):
    created = create(client, input=[{"type": "text", "text": "x"}] + [image_block(i) for i in range(6)])
    assert server.interaction(created.id)["task"] == "reference_to_video"
    assert len(server.last("createInteraction").input_images) == 6


def test_extensions_up_to_30_seconds_on_the_gemini_api_40_on_vertex(server, client, vertex):
    source = base64.b64decode(finish(client, create(client, fmt={"duration": "15s"}).id).output_video.data)
    extend = {"video_config": {"task": "extend"}}
    longer = finish(
        client, create(client, input=[video_block(source)], fmt={"duration": "10s"}, generation_config=extend).id
    )
    long_clip = base64.b64decode(longer.output_video.data)
    assert probe_mp4(long_clip).duration == 25
    assert server.last("createInteraction").source_video == ("video/mp4", source)
    too_long = {"input": [video_block(long_clip)], "fmt": {"duration": "10s"}, "generation_config": extend}
    error = refusal(lambda: create(client, **too_long))
    assert error["message"] == "The extended video would be 35s long; at most 30s are supported."
    assert finish(vertex, create(vertex, **too_long).id).status == "completed"  # 40 s on Vertex
    short = {"input": [video_block(source)], "fmt": {"duration": "2s"}, "generation_config": extend}
    assert refusal(lambda: create(client, **short))["message"] == "An extension adds 3 to 10 seconds, got 2s."


def test_extension_of_a_previous_interaction_counts_its_length(server, client):
    extend = {"fmt": {"duration": "10s"}, "generation_config": {"video_config": {"task": "extend"}}}
    first = finish(client, create(client, fmt={"duration": "15s"}).id)
    second = finish(client, create(client, "continue", previous_interaction_id=first.id, **extend).id)
    assert server.interaction(second.id)["seconds"] == 25
    assert server.interaction(second.id)["task"] == "extend"
    error = refusal(lambda: create(client, "more", previous_interaction_id=second.id, **extend))
    assert "35s long" in error["message"]


# --------------------------------------------------------------------------------------------
# Unknown and retired models, previous interactions
# --------------------------------------------------------------------------------------------


def test_unknown_and_retired_models_are_404_in_googles_words(server, client, vertex):
    with pytest.raises(ierrors.NotFoundError) as info:
        create(client, model="gemini-omni-9-flash")
    assert info.value.body["error"]["message"].startswith("models/gemini-omni-9-flash is not found for API version v1")
    server.retire_model(OMNI)
    with pytest.raises(ierrors.NotFoundError) as info:
        create(vertex)
    assert info.value.body["error"]["status"] == "NOT_FOUND"
    assert (
        f"Publisher Model `projects/fake-project/locations/us-central1/publishers/google/models/{OMNI}`"
        in (info.value.body["error"]["message"])
    )
    assert OMNI not in server.known_models("gemini")
    server.reset()
    assert create(client).status == "in_progress"
    server.add_model("omni-test")
    assert create(client, model="omni-test").model == "omni-test"


def test_unknown_forgotten_or_deleted_previous_interaction_is_404_naming_it(server, client):
    with pytest.raises(ierrors.NotFoundError) as info:
        create(client, "make it night", previous_interaction_id="v1_nope")
    assert (
        info.value.body["error"]["message"] == "Interaction v1_nope was not found. It may have expired or been deleted."
    )
    done = finish(client, create(client).id)
    assert server.forget_interaction(done.id) and server.interaction(done.id) is None
    with pytest.raises(ierrors.NotFoundError):
        create(client, "make it night", previous_interaction_id=done.id)
    with pytest.raises(ierrors.NotFoundError):
        client.interactions.get(done.id)
    other = finish(client, create(client).id)
    client.interactions.delete(other.id)
    assert server.last("deleteInteraction").path == f"/v1/interactions/{other.id}"
    with pytest.raises(ierrors.NotFoundError):
        create(client, "make it night", previous_interaction_id=other.id)


def test_a_running_or_unstored_previous_interaction_is_refused(server, client):
    running = create(client)
    error = refusal(lambda: create(client, "night", previous_interaction_id=running.id))
    assert error["status"] == "FAILED_PRECONDITION"
    unstored = finish(client, create(client, store=False).id)
    with pytest.raises(ierrors.NotFoundError):
        create(client, "night", previous_interaction_id=unstored.id)


def test_edits_chain_keep_the_length_and_look_different(server, client):
    first = finish(client, create(client, fmt={"duration": "6s"}).id)
    edit = finish(client, create(client, "make it night", previous_interaction_id=first.id, fmt={}).id)
    again = finish(client, create(client, "add rain", previous_interaction_id=edit.id, fmt={}).id)
    videos = [base64.b64decode(i.output_video.data) for i in (first, edit, again)]
    assert len(set(videos)) == 3 and {probe_mp4(v).duration for v in videos} == {6}
    assert [server.interaction(i.id)["variant"] for i in (first, edit, again)] == [0, 1, 2]
    assert server.interaction(again.id)["task"] == "edit"
    sent = server.requests_for("createInteraction")
    assert [r.previous_interaction_id for r in sent] == [None, first.id, edit.id]


# --------------------------------------------------------------------------------------------
# Scripted faults and poll knobs
# --------------------------------------------------------------------------------------------


def test_scripted_http_errors_once_then_normal(server, client):
    server.queue_scenarios(OMNI, [Scenario.error(429, retry_delay=3), Scenario.error(500)])
    with pytest.raises(ierrors.RateLimitError) as info:
        create(client)
    assert info.value.body["error"]["details"][0]["retryDelay"] == "3s"
    with pytest.raises(ierrors.InternalServerError):
        create(client)
    assert create(client).status == "in_progress"
    assert server.counts["createInteraction"] == 3  # one request each: the SDK's retries are off


@pytest.mark.parametrize(
    ("marker", "code"),
    [
        ("[[safety]]", "SAFETY"),
        ("[[blocked]]", "PROHIBITED_CONTENT"),
        ("[[op_error]]", "INTERNAL"),
        ("[[op_error:8]]", "RESOURCE_EXHAUSTED"),
    ],
)
def test_failed_interactions_carry_errors(server, client, marker, code):
    done = finish(client, create(client, f"x {marker}").id)
    assert done.status == "failed" and done.output_video is None
    assert done.errors[0].code == code and done.errors[0].message


def test_poll_knobs(server, client):
    never = create(client, "x [[never]]")
    assert all(client.interactions.get(never.id).status == "in_progress" for _ in range(4))
    flaky = create(client, "x [[poll_fail_first:1]][[polls:1]]")
    with pytest.raises(ierrors.InternalServerError):
        client.interactions.get(flaky.id)
    assert client.interactions.get(flaky.id).status == "completed"


# --------------------------------------------------------------------------------------------
# models.list / models.get, Imagen
# --------------------------------------------------------------------------------------------


def test_models_list_on_the_gemini_api(server, client):
    names = [m.name for m in client.models.list(config={"page_size": 4})]
    assert names == [f"models/{m}" for m in server.known_models("gemini")]
    assert f"models/{OMNI}" in names and "models/veo-3.1-generate-001" not in names
    assert not any("imagen" in n for n in names)
    lists = server.requests_for("listModels")
    assert lists[0].path == "/v1/models" and len(lists) == -(-len(names) // 4)
    assert client.models.get(model=OMNI).display_name == "Gemini Omni Flash"
    server.retire_model(OMNI)
    assert f"models/{OMNI}" not in [m.name for m in client.models.list()]
    with pytest.raises(genai.errors.ClientError) as info:
        client.models.get(model=OMNI)
    assert info.value.code == 404


def test_models_list_on_vertex(server, vertex):
    server.add_model("omni-test", backends=("vertex",))
    names = [m.name for m in vertex.models.list()]
    assert names == [f"publishers/google/models/{m}" for m in server.known_models("vertex")]
    assert "publishers/google/models/veo-3.1-generate-001" in names and "publishers/google/models/omni-test" in names
    assert server.last("listModels").path == "/v1beta1/publishers/google/models"
    assert vertex.models.get(model=OMNI).name == f"publishers/google/models/{OMNI}"


def test_imagen_is_shut_down(server):
    """Imagen 4's `:predict` (what `generate_images` sent) is a 404 on both backends."""
    for path in ("/v1/models/imagen-4.0-generate-001", "/v1beta1/publishers/google/models/imagen-4.0-generate-001"):
        answer = httpx.post(f"{server.base_url}{path}:predict", json={"instances": [{"prompt": "x"}]})
        error = answer.json()["error"]
        assert answer.status_code == 404 and error["status"] == "NOT_FOUND"
        assert "imagen-4.0-generate-001" in error["message"]
