"""The Gemini text call of "Improve my prompt" with the REAL google-genai SDK against the fake Google
(its text mode: "Improved: " + the last user text). Django-free."""

from __future__ import annotations

import pytest

from botapp.providers import GoogleConfig, PermanentError, ProviderBusy, RateLimited, SafetyBlocked
from botapp.providers.text import TextRequest, generate_text
from sandbox.google import Scenario

MODEL = "gemini-3.5-flash-lite"
INSTRUCTION = "You rewrite descriptions for an AI image model."


@pytest.fixture
def config(server) -> GoogleConfig:
    return GoogleConfig(
        api_key="gemini-key",
        vertex_api_key="vertex-key",
        gemini_base_url=server.base_url,
        vertex_base_url=server.base_url,
        http_timeout=10,
    )


def request(text: str = "a cat on a roof", backend: str = "gemini") -> TextRequest:
    return TextRequest(model=MODEL, instruction=INSTRUCTION, text=text, backend=backend)


def test_gemini_api_call_sends_the_instruction_and_the_text(server, config):
    assert generate_text(config, request()) == "Improved: a cat on a roof"
    sent = server.last("generateContent")
    assert sent.model == MODEL and sent.backend == "gemini" and sent.api_key == "gemini-key"
    assert sent.json["systemInstruction"]["parts"][0]["text"] == INSTRUCTION
    assert [p["text"] for c in sent.json["contents"] for p in c["parts"]] == ["a cat on a roof"]
    assert "responseModalities" not in sent.generation_config  # a text model: no IMAGE output asked
    assert sent.json.get("store") is False  # the user's prompt is not kept in the project's logs


def test_vertex_call_has_no_store_field(server, config):
    assert generate_text(config, request(backend="vertex")) == "Improved: a cat on a roof"
    sent = server.last("generateContent")
    assert sent.backend == "vertex" and sent.model == MODEL
    assert "store" not in sent.json  # the SDK refuses `store` on Vertex AI


@pytest.mark.parametrize("marker", ["[[blocked]]", "[[safety]]", "[[finish:PROHIBITED_CONTENT]]"])
def test_refusals_are_safety_blocked(server, config, marker):
    with pytest.raises(SafetyBlocked):
        generate_text(config, request(f"a cat {marker}"))


@pytest.mark.parametrize(
    ("marker", "error"),
    [("[[error:429]]", RateLimited), ("[[error:503]]", ProviderBusy), ("[[error:404]]", PermanentError)],
)
def test_http_errors_map_to_typed_errors(server, config, marker, error):
    with pytest.raises(error):
        generate_text(config, request(f"a cat {marker}"))


def test_an_empty_answer_is_an_error(server, config):
    server.set_model_scenario(MODEL, Scenario(text="   "))
    with pytest.raises(PermanentError) as exc:
        generate_text(config, request())
    assert exc.value.code == "empty_result"


def test_no_model_id_is_not_configured(config):
    with pytest.raises(PermanentError) as exc:
        generate_text(config, TextRequest(model="", instruction=INSTRUCTION, text="x"))
    assert exc.value.code == "not_configured"
