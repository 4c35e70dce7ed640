"""The fake Google's scripting: per-model queues of scenarios and the text-model mode of generateContent,
driven by the REAL google-genai SDK (and the providers where they apply)."""

from __future__ import annotations

import pytest
from google import genai
from google.genai import types

from botapp.providers import (
    GoogleConfig,
    NanoBananaProvider,
    ProviderBusy,
    ProviderRequest,
    SafetyBlocked,
    VeoProvider,
)
from sandbox.google import Scenario

KEY = "fake-key"
NB = "gemini-3.1-flash-image"
TEXT = "gemini-2.5-flash"
VEO = "veo-3.1-generate-001"


@pytest.fixture
def config(server) -> GoogleConfig:
    return GoogleConfig(
        api_key=KEY, vertex_api_key=KEY, gemini_base_url=server.base_url, vertex_base_url=server.base_url
    )


@pytest.fixture
def client(server):
    c = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=server.base_url))
    yield c
    c.close()


def _image(config: GoogleConfig, prompt: str = "a fox") -> str:
    """'ok' or the safety reason of one Nano Banana call."""
    try:
        NanoBananaProvider(config).submit(ProviderRequest(provider_model_id=NB, kind="image", prompt=prompt))
    except SafetyBlocked as exc:
        return exc.reason
    return "ok"


# --------------------------------------------------------------------------------------------
# Queued scenarios
# --------------------------------------------------------------------------------------------


def test_queue_blocks_exactly_the_second_of_four_calls(server, config):
    server.queue_scenarios(NB, [None, Scenario.safety(), None])
    assert server.queued_left(NB) == 3
    assert [_image(config) for _ in range(4)] == ["ok", "IMAGE_SAFETY", "ok", "ok"]
    assert server.queued_left(NB) == 0
    assert len(server.requests_for("generateContent", NB)) == 4


def test_queue_is_per_model_and_polls_do_not_consume_it(server, config):
    server.queue_scenarios(VEO, [None, Scenario.error(503)])
    server.queue_scenarios(NB, [Scenario(block_reason="SAFETY")])
    provider = VeoProvider(config)
    req = ProviderRequest(provider_model_id=VEO, kind="video", prompt="waves", params={"aspect_ratio": "16:9"})
    submission = provider.submit(req)
    for _ in range(3):  # polls of the first operation leave the second entry in place
        if provider.poll(submission.operation_id, req).is_done:
            break
    assert server.queued_left(VEO) == 1
    with pytest.raises(ProviderBusy):
        provider.submit(req)
    assert server.queued_left(VEO) == 0
    assert _image(config) == "SAFETY"
    assert _image(config) == "ok"


def test_queue_adds_to_the_model_script_and_markers_still_win(server, config):
    server.set_model_scenario(NB, Scenario(text="model script"))
    server.queue_scenarios(NB, [Scenario.safety("IMAGE_OTHER"), None])
    assert _image(config) == "IMAGE_OTHER"
    assert _image(config, "[[block:BLOCKLIST]]") == "BLOCKLIST"  # the None entry, overridden by the marker
    assert _image(config) == "ok"


def test_reset_forgets_queues(server, config):
    server.queue_scenarios(NB, [Scenario.safety()])
    server.reset()
    assert server.queued_left(NB) == 0
    assert _image(config) == "ok"


# --------------------------------------------------------------------------------------------
# Text models
# --------------------------------------------------------------------------------------------


def test_text_model_rewrites_the_last_user_text(server, client):
    response = client.models.generate_content(
        model=TEXT,
        contents=[
            types.Content(role="user", parts=[types.Part.from_text(text="first turn")]),
            types.Content(role="model", parts=[types.Part.from_text(text="an answer")]),
            types.Content(role="user", parts=[types.Part.from_text(text="a cat on a roof")]),
        ],
        config=types.GenerateContentConfig(system_instruction="Rewrite the prompt for an image model."),
    )
    assert response.text == "Improved: a cat on a roof"
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    sent = server.last("generateContent")
    assert sent.is_text and sent.model == TEXT
    assert sent.json["systemInstruction"]["parts"][0]["text"] == "Rewrite the prompt for an image model."


def test_text_modality_only_is_a_text_answer_and_image_modality_is_not(server, client):
    response = client.models.generate_content(
        model=TEXT, contents="sunset", config=types.GenerateContentConfig(response_modalities=["TEXT"])
    )
    assert response.text == "Improved: sunset"
    image = client.models.generate_content(
        model=NB, contents="sunset", config=types.GenerateContentConfig(response_modalities=["IMAGE"])
    )
    assert image.candidates[0].content.parts[0].inline_data.mime_type == "image/png"
    assert not server.last("generateContent").is_text


def test_text_model_safety_marker_blocks_the_prompt(server, client):
    response = client.models.generate_content(model=TEXT, contents="something [[blocked]]")
    assert not response.candidates
    assert response.prompt_feedback.block_reason == types.BlockedReason.PROHIBITED_CONTENT


def test_text_model_safety_finish_reason_has_no_content(server, client):
    response = client.models.generate_content(model=TEXT, contents="something [[safety]]")
    candidate = response.candidates[0]
    assert candidate.finish_reason == types.FinishReason.SAFETY
    assert candidate.content is None and response.text is None


def test_text_model_scripted_by_queue_and_text(server, client):
    server.queue_scenarios(TEXT, [Scenario(text="A scripted rewrite."), Scenario.safety()])
    assert client.models.generate_content(model=TEXT, contents="x").text == "A scripted rewrite."
    assert client.models.generate_content(model=TEXT, contents="x").candidates[0].finish_reason == "SAFETY"
    assert client.models.generate_content(model=TEXT, contents="x").text == "Improved: x"


def test_text_model_http_errors(server, client):
    server.set_model_scenario(TEXT, Scenario.error(404, "Model gemini-2.5-flash is not found."))
    with pytest.raises(genai.errors.ClientError) as info:
        client.models.generate_content(model=TEXT, contents="x")
    assert info.value.code == 404 and info.value.status == "NOT_FOUND"


# --------------------------------------------------------------------------------------------
# Retired models, produced videos
# --------------------------------------------------------------------------------------------


def test_a_model_scripted_404_still_answers_not_found(server, client):
    server.set_model_scenario(NB, Scenario.error(404, "models/x is not found"))
    image_output = types.GenerateContentConfig(response_modalities=["IMAGE"])
    with pytest.raises(genai.errors.ClientError) as info:
        client.models.generate_content(model=NB, contents="x", config=image_output)
    assert (info.value.code, info.value.status, info.value.message) == (404, "NOT_FOUND", "models/x is not found")


def test_retire_model_answers_every_generation_call_404_and_reset_forgets_it(server, client):
    server.retire_model(TEXT)
    with pytest.raises(genai.errors.ClientError) as info:
        client.models.generate_content(model=TEXT, contents="x")
    assert info.value.code == 404
    assert info.value.message == (
        f"models/{TEXT} is not found for API version v1, or is not supported for generateContent. "
        "Call ListModels to see the list of available models and their supported methods."
    )
    assert client.models.generate_content(model="gemini-2.5-pro", contents="x").text == "Improved: x"
    server.reset()
    assert client.models.generate_content(model=TEXT, contents="x").text == "Improved: x"


def test_videos_the_server_answered_are_remembered_until_reset(server, config):
    provider = VeoProvider(config)
    req = ProviderRequest(provider_model_id=VEO, kind="video", prompt="waves", params={"aspect_ratio": "9:16"})
    submission = provider.submit(req)
    assert not server.produced(server.video_bytes("9:16"))
    while not (outcome := provider.poll(submission.operation_id, req)).is_done:
        pass
    assert server.produced(outcome.result.media[0].data)
    assert outcome.result.media[0].data == server.video_bytes("9:16")
    server.reset()
    assert not server.produced(outcome.result.media[0].data)
