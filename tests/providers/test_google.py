"""The Google providers with the REAL google-genai SDK against the fake Google server (no mocks)."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import socket
import time
from pathlib import Path

import aiohttp
import httpx
import pytest
from google.genai import errors as genai_errors
from PIL import Image

from botapp.providers import (
    DemoProvider,
    GoogleConfig,
    InputImage,
    InvalidInput,
    NanoBananaProvider,
    OmniProvider,
    OperationTimeout,
    PermanentError,
    PollOutcome,
    ProviderBusy,
    ProviderError,
    ProviderRequest,
    ProviderResult,
    RateLimited,
    SafetyBlocked,
    Submission,
    Transient,
    VeoProvider,
    get_provider,
)
from botapp.providers.google import map_exception, map_operation_error
from botapp.providers.media import probe_mp4
from sandbox.google import IMAGEN_RAI_MESSAGE, FakeGoogleServer, Scenario, parse_markers

GEMINI_KEY = "gemini-test-key"
VERTEX_KEY = "vertex-test-key"
NB_MODEL = "nano-banana-test"
VEO_MODEL = "veo-test"


def _png(colour: tuple[int, int, int], size: tuple[int, int] = (16, 16)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture
def config(server) -> GoogleConfig:
    return GoogleConfig(
        api_key=GEMINI_KEY,
        vertex_api_key=VERTEX_KEY,
        gemini_base_url=server.base_url,
        vertex_base_url=server.base_url,
        http_timeout=10,
    )


def image_req(prompt: str = "a red fox", **kw) -> ProviderRequest:
    kw.setdefault("provider_model_id", NB_MODEL)
    return ProviderRequest(kind="image", prompt=prompt, **kw)


def video_req(prompt: str = "waves at sunset", **kw) -> ProviderRequest:
    kw.setdefault("provider_model_id", VEO_MODEL)
    kw.setdefault("params", {"aspect_ratio": "16:9", "duration_seconds": 6, "resolution": "720p"})
    return ProviderRequest(kind="video", prompt=prompt, **kw)


def run_video(provider: VeoProvider, req: ProviderRequest, max_polls: int = 10) -> tuple[ProviderResult, int]:
    submission = provider.submit(req)
    assert submission.is_pending and submission.operation_id
    for polls in range(1, max_polls + 1):
        outcome = provider.poll(submission.operation_id, req)
        if outcome.is_done:
            assert outcome.result is not None
            return outcome.result, polls
    raise AssertionError("the operation did not finish")


# --------------------------------------------------------------------------------------------
# Nano Banana
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backend", "path", "key"),
    [
        ("gemini", f"/v1/models/{NB_MODEL}:generateContent", GEMINI_KEY),
        ("vertex", f"/v1beta1/publishers/google/models/{NB_MODEL}:generateContent", VERTEX_KEY),
    ],
)
def test_nano_banana_text_to_image(server, config, backend, path, key):
    provider = NanoBananaProvider(config)
    submission = provider.submit(
        image_req(params={"aspect_ratio": "16:9"}, backend=backend, request_id="r1", negative_prompt="blur")
    )

    assert submission.is_done and not submission.is_pending
    result = submission.result
    assert len(result.media) == 1 and not result.is_demo
    item = result.media[0]
    assert item.mime_type == "image/png"
    with Image.open(io.BytesIO(item.data)) as im:
        assert im.format == "PNG" and im.size == (64, 36) == (item.width, item.height)
    assert result.metadata["finish_reason"] == "STOP"
    assert result.metadata["backend"] == backend
    assert result.metadata["usage"]["candidates_token_count"] == 1290

    sent = server.last("generateContent")
    assert sent.path == path
    assert sent.api_key == key
    assert sent.backend == backend
    assert sent.aspect_ratio == "16:9"
    assert sent.generation_config["responseModalities"] == ["IMAGE"]
    assert sent.prompt == "a red fox\n\nAvoid: blur"
    assert sent.input_images == []


def test_nano_banana_default_backend_follows_config(server, config):
    NanoBananaProvider(config).submit(image_req())
    assert server.last().backend == "gemini"
    vertex_default = dataclasses.replace(config, use_vertex=True)
    NanoBananaProvider(vertex_default).submit(image_req())
    assert server.last().backend == "vertex"


def test_nano_banana_edit_sends_both_images(server, config):
    red, blue = _png((255, 0, 0)), _jpeg((0, 0, 255))
    provider = NanoBananaProvider(config)
    # the JPEG is declared as PNG: the provider sniffs the real type
    images = [InputImage(red, "image/png"), InputImage(blue, "image/png")]
    result = provider.submit(image_req("put them together", input_images=images, params={"aspect_ratio": "1:1"})).result

    sent = server.last("generateContent")
    assert [mime for mime, _ in sent.input_images] == ["image/png", "image/jpeg"]
    assert [data for _, data in sent.input_images] == [red, blue]
    with Image.open(io.BytesIO(result.media[0].data)) as im:
        assert im.text["fake-inputs"] == "2"  # the fake drew one stripe per input image
        assert im.size == (64, 64)
        left, right = im.convert("RGB").getpixel((5, 60)), im.convert("RGB").getpixel((60, 60))
    assert left[0] > 200 and left[2] < 60
    assert right[2] > 200 and right[0] < 60


def test_nano_banana_vertex_project_scoped_paths(server):
    cfg = GoogleConfig(
        vertex_api_key=VERTEX_KEY, project="my-proj", location="europe-west4", vertex_base_url=server.base_url
    )
    NanoBananaProvider(cfg).submit(image_req(backend="vertex"))
    assert (
        server.last().path
        == f"/v1beta1/projects/my-proj/locations/europe-west4/publishers/google/models/{NB_MODEL}:generateContent"
    )


def test_nano_banana_text_next_to_image_is_returned(server, config):
    server.set_model_scenario(NB_MODEL, Scenario(text="Here is your fox."))
    result = NanoBananaProvider(config).submit(image_req()).result
    assert result.text == "Here is your fox." and len(result.media) == 1


# --------------------------------------------------------------------------------------------
# Veo
# --------------------------------------------------------------------------------------------


def test_veo_submit_polls_and_returns_bytes(server, config):
    provider = VeoProvider(config)
    req = video_req("waves [[polls:3]]")
    submission = provider.submit(req)

    assert submission.is_pending
    name = submission.operation_id
    assert name.startswith(f"projects/fake-project/locations/us-central1/publishers/google/models/{VEO_MODEL}/")
    assert "/operations/" in name
    sent = server.last("predictLongRunning")
    assert sent.path == f"/v1beta1/publishers/google/models/{VEO_MODEL}:predictLongRunning"
    assert sent.parameters == {"sampleCount": 1, "durationSeconds": 6, "aspectRatio": "16:9", "resolution": "720p"}
    assert sent.json["instances"] == [{"prompt": "waves [[polls:3]]"}]

    # a fresh provider (another worker process) polls with nothing but the stored name
    poller = VeoProvider(dataclasses.replace(config))
    outcomes = [poller.poll(name, req) for _ in range(3)]
    assert [o.is_done for o in outcomes] == [False, False, True]
    result = outcomes[-1].result
    video = result.media[0]
    assert video.mime_type == "video/mp4"
    assert video.data == server.video_bytes("16:9")
    info = probe_mp4(video.data)
    assert info is not None and info.width == 128 and info.height == 72
    assert video.duration == 6
    assert result.metadata["operation_name"] == name

    polls = server.requests_for("fetchPredictOperation")
    assert len(polls) == 3
    resource = name.rpartition("/operations/")[0]
    assert {p.path for p in polls} == {f"/v1beta1/{resource}:fetchPredictOperation"}
    assert polls[0].json == {"operationName": name}


def test_veo_image_to_video(server, config):
    start = _png((10, 200, 30), (32, 18))
    req = video_req(input_images=[InputImage(start, "image/png")], params={"aspect_ratio": "9:16"})
    result, _ = run_video(VeoProvider(config), req)

    sent = server.last("predictLongRunning")
    assert sent.json["instances"][0]["image"]["mimeType"] == "image/png"
    assert sent.input_images == [("image/png", start)]
    assert sent.parameters["aspectRatio"] == "9:16"
    assert result.media[0].data == server.video_bytes("9:16")


def test_veo_video_uri_is_downloaded(server, config):
    result, _ = run_video(VeoProvider(config), video_req("[[video_uri]] a uri please"))
    item = result.media[0]
    assert item.uri and item.uri.startswith(server.base_url + "/fake/videos/")
    assert item.data == server.video_bytes("16:9")
    download = server.last("download")
    assert download.headers.get("x-goog-api-key") == VERTEX_KEY  # the configured base URL's host is trusted


@pytest.mark.parametrize(
    ("status", "error", "code"),
    [(500, ProviderBusy, "download_failed"), (404, PermanentError, "download_failed"), (429, RateLimited, None)],
)
def test_veo_video_download_failure(server, config, status, error, code):
    with pytest.raises(error) as info:
        run_video(VeoProvider(config), video_req(f"[[download_error:{status}]]"))
    if code:
        assert info.value.code == code


def test_veo_seconds_based_operation(server, config):
    provider = VeoProvider(config)
    req = video_req("[[seconds:0.3]]")
    submission = provider.submit(req)
    assert provider.poll(submission.operation_id, req).is_pending
    assert provider.poll(submission.operation_id, req).is_pending
    time.sleep(0.35)
    assert provider.poll(submission.operation_id, req).is_done


def test_veo_on_gemini_api_submit_fails_without_a_request(server, config):
    with pytest.raises(PermanentError) as info:
        VeoProvider(config).submit(video_req(backend="gemini"))
    assert info.value.code == "backend_unsupported"
    assert server.requests == []


def test_veo_gemini_api_operation_can_be_polled(server, config):
    """The SDK cannot start Veo on the Gemini API, but it polls Gemini API operations (GET) fine."""
    created = httpx.post(
        f"{server.base_url}/v1/models/{VEO_MODEL}:predictLongRunning",
        json={"instances": [{"prompt": "x"}], "parameters": {"aspectRatio": "16:9"}},
        headers={"x-goog-api-key": GEMINI_KEY},
    ).json()
    name = created["name"]
    assert name.startswith(f"models/{VEO_MODEL}/operations/")

    provider = VeoProvider(config)
    req = video_req()
    assert provider.poll(name, req).is_pending
    outcome = provider.poll(name, req)
    assert outcome.is_done
    assert outcome.result.media[0].data == server.video_bytes("16:9")
    assert outcome.result.metadata["backend"] == "gemini"
    gets = server.requests_for("getOperation")
    assert gets[-1].method == "GET" and gets[-1].path == f"/v1/{name}"
    download = server.last("download")
    assert download.path.startswith("/v1/files/") and download.api_key == GEMINI_KEY


# --------------------------------------------------------------------------------------------
# Refusals and errors, table-driven
# --------------------------------------------------------------------------------------------


NANO_BANANA_CASES = [
    # (prompt marker, error class, code, safety reason, retryable)
    ("[[safety]]", SafetyBlocked, "safety_blocked", "IMAGE_SAFETY", False),
    ("[[finish:IMAGE_PROHIBITED_CONTENT]]", SafetyBlocked, "safety_blocked", "IMAGE_PROHIBITED_CONTENT", False),
    ("[[finish:IMAGE_OTHER]]", SafetyBlocked, "safety_blocked", "IMAGE_OTHER", False),
    ("[[finish:SAFETY]]", SafetyBlocked, "safety_blocked", "SAFETY", False),
    ("[[finish:PROHIBITED_CONTENT]]", SafetyBlocked, "safety_blocked", "PROHIBITED_CONTENT", False),
    ("[[finish:RECITATION]]", SafetyBlocked, "safety_blocked", "RECITATION", False),
    ("[[finish:BLOCKLIST]]", SafetyBlocked, "safety_blocked", "BLOCKLIST", False),
    ("[[finish:SPII]]", SafetyBlocked, "safety_blocked", "SPII", False),
    ("[[blocked]]", SafetyBlocked, "safety_blocked", "PROHIBITED_CONTENT", False),
    ("[[block:SAFETY]]", SafetyBlocked, "safety_blocked", "SAFETY", False),
    ("[[block:OTHER]]", SafetyBlocked, "safety_blocked", "OTHER", False),
    ("[[no_image]]", PermanentError, "no_image", None, False),
    ("[[text_only]]", PermanentError, "no_image", None, False),
    ("[[finish:MAX_TOKENS]]", PermanentError, "no_image", None, False),
    ("[[error:400]]", InvalidInput, "invalid_input", None, False),
    ("[[error:401]]", PermanentError, "auth", None, False),
    ("[[error:403]]", PermanentError, "auth", None, False),
    ("[[error:404]]", PermanentError, "model_not_found", None, False),
    ("[[error:429]]", RateLimited, "rate_limited", None, True),
    ("[[error:500]]", ProviderBusy, "provider_busy", None, True),
    ("[[error:503]]", ProviderBusy, "provider_busy", None, True),
    ("[[error:504]]", Transient, "transient", None, True),
]


@pytest.mark.parametrize(("marker", "error", "code", "reason", "retryable"), NANO_BANANA_CASES)
@pytest.mark.parametrize("backend", ["gemini", "vertex"])
def test_nano_banana_refusals_and_errors(server, config, backend, marker, error, code, reason, retryable):
    with pytest.raises(error) as info:
        NanoBananaProvider(config).submit(image_req(f"a fox {marker}", backend=backend))
    exc = info.value
    assert type(exc) is error
    assert exc.code == code and exc.retryable is retryable
    if reason:
        assert exc.reason == reason and exc.user_reason
    assert len(server.requests) == 1


def test_rate_limit_carries_retry_after(server, config):
    with pytest.raises(RateLimited) as info:
        NanoBananaProvider(config).submit(image_req("[[error:429]][[retry_after:7.5]]"))
    assert info.value.retry_after == 7.5


def test_text_only_answer_keeps_the_model_text(server, config):
    with pytest.raises(PermanentError) as info:
        NanoBananaProvider(config).submit(image_req("[[text_only]]"))
    assert "can't draw" in info.value.details["text"]


def test_fail_first_then_succeed(server, config):
    provider = NanoBananaProvider(config)
    req = image_req("flaky [[fail_first:2]]")
    for _ in range(2):
        with pytest.raises(ProviderBusy):
            provider.submit(req)
    assert provider.submit(req).is_done
    assert len(server.requests_for("generateContent")) == 3


def test_model_scenario_scripts_every_request_of_a_model(server, config):
    server.set_model_scenario(NB_MODEL, Scenario(block_reason="SAFETY"))
    with pytest.raises(SafetyBlocked) as info:
        NanoBananaProvider(config).submit(image_req("harmless"))
    assert info.value.reason == "SAFETY"
    server.set_model_scenario(NB_MODEL, None)
    assert NanoBananaProvider(config).submit(image_req("harmless")).is_done


def test_custom_marker(server, config):
    server.add_marker("overloaded", Scenario.error(503, "Try later"))
    with pytest.raises(ProviderBusy, match="Try later"):
        NanoBananaProvider(config).submit(image_req("x [[overloaded]]"))


def test_invalid_api_key_is_an_auth_error(server, config):
    server.expected_api_key = "another-key"
    with pytest.raises(PermanentError) as info:
        NanoBananaProvider(config).submit(image_req())
    assert info.value.code == "auth"


def test_http_timeout_is_transient(server, config):
    slow = dataclasses.replace(config, http_timeout=0.2)
    with pytest.raises(Transient) as info:
        NanoBananaProvider(slow).submit(image_req("[[latency:1]]"))
    assert info.value.code == "timeout" and info.value.retryable


def test_network_error_is_transient():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = GoogleConfig(api_key=GEMINI_KEY, gemini_base_url=f"http://127.0.0.1:{port}", http_timeout=2)
    with pytest.raises(Transient) as info:
        NanoBananaProvider(cfg).submit(image_req())
    assert info.value.code == "network"


@pytest.mark.parametrize(
    ("req", "code"),
    [
        (image_req(params={"aspect_ratio": "wide"}), "unsupported_aspect_ratio"),
        (image_req(input_images=[InputImage(b"", "image/png")]), "bad_image"),
        (image_req(input_images=[InputImage(b"%PDF-1.4", "application/pdf")]), "bad_image"),
        (video_req(provider_model_id=NB_MODEL), "wrong_kind"),
    ],
)
def test_invalid_input_is_caught_before_any_request(server, config, req, code):
    with pytest.raises(InvalidInput) as info:
        NanoBananaProvider(config).submit(req)
    assert info.value.code == code
    assert server.requests == []


def test_unsupported_aspect_ratio_from_the_server_is_invalid_input(server, config):
    server.set_model_scenario(NB_MODEL, Scenario.error(400, "Unsupported aspect ratio: 7:5"))
    with pytest.raises(InvalidInput, match="Unsupported aspect ratio"):
        NanoBananaProvider(config).submit(image_req(params={"aspect_ratio": "7:5"}))


VEO_POLL_CASES = [
    # (marker, error class, code)
    ("[[rai]]", SafetyBlocked, "safety_blocked"),
    ("[[op_error]]", ProviderBusy, "operation_failed_transient"),
    ("[[op_error:3]]", InvalidInput, "invalid_input"),
    ("[[op_error:4]]", OperationTimeout, "operation_timeout"),
    ("[[op_error:8]]", RateLimited, "rate_limited"),
    ("[[op_error:7]]", PermanentError, "operation_failed"),
    ("[[poll_error:503]]", ProviderBusy, "provider_busy"),
    ("[[poll_error:404]]", PermanentError, "model_not_found"),
]


@pytest.mark.parametrize(("marker", "error", "code"), VEO_POLL_CASES)
def test_veo_late_failures_surface_at_poll(server, config, marker, error, code):
    provider = VeoProvider(config)
    req = video_req(f"x {marker}")
    submission = provider.submit(req)
    assert submission.is_pending
    with pytest.raises(error) as info:
        for _ in range(5):
            provider.poll(submission.operation_id, req)
    assert type(info.value) is error and info.value.code == code


def test_veo_rai_filtered_reason_is_kept(server, config):
    with pytest.raises(SafetyBlocked) as info:
        run_video(VeoProvider(config), video_req("[[rai]]"))
    assert info.value.reason == "RAI_MEDIA_FILTERED"
    assert info.value.details["support_codes"] == ["58061214"]


@pytest.mark.parametrize(("marker", "error"), [("[[error:429]]", RateLimited), ("[[error:400]]", InvalidInput)])
def test_veo_submit_errors(server, config, marker, error):
    with pytest.raises(error):
        VeoProvider(config).submit(video_req(marker))


def test_veo_poll_fail_first_then_done(server, config):
    provider = VeoProvider(config)
    req = video_req("[[poll_fail_first:1]][[polls:1]]")
    submission = provider.submit(req)
    with pytest.raises(ProviderBusy):
        provider.poll(submission.operation_id, req)
    assert provider.poll(submission.operation_id, req).is_done


def test_veo_operation_that_never_finishes(server, config):
    provider = VeoProvider(config)
    req = video_req("[[never]]")
    submission = provider.submit(req)
    assert all(provider.poll(submission.operation_id, req).is_pending for _ in range(5))


def test_unknown_operation_is_permanent(server, config):
    with pytest.raises(PermanentError):
        VeoProvider(config).poll(
            f"projects/p/locations/l/publishers/google/models/{VEO_MODEL}/operations/nope", video_req()
        )


# --------------------------------------------------------------------------------------------
# Configuration, registry, types, pure mappings
# --------------------------------------------------------------------------------------------


def test_vertex_not_configured(server):
    cfg = GoogleConfig(api_key=GEMINI_KEY, gemini_base_url=server.base_url)
    with pytest.raises(PermanentError) as info:
        VeoProvider(cfg).submit(video_req())
    assert info.value.code == "not_configured"
    with pytest.raises(PermanentError) as info:
        NanoBananaProvider(GoogleConfig()).submit(image_req())
    assert info.value.code == "not_configured"


def test_base_url_from_the_environment(server, monkeypatch):
    """With no base URL in GoogleConfig the SDK reads GOOGLE_GEMINI_BASE_URL / GOOGLE_VERTEX_BASE_URL."""
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    cfg = GoogleConfig(api_key="env-gemini-key", vertex_api_key="env-vertex-key")
    NanoBananaProvider(cfg).submit(image_req())
    VeoProvider(cfg).submit(video_req())
    assert [(r.backend, r.api_key) for r in server.requests] == [
        ("gemini", "env-gemini-key"),
        ("vertex", "env-vertex-key"),
    ]


def test_errors_survive_pickling():
    import pickle

    for error in (
        SafetyBlocked("IMAGE_SAFETY", details={"stage": "output"}),
        RateLimited("slow down", retry_after=3.0),
        PermanentError("gone", code="model_not_found"),
    ):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and copy.__dict__ == error.__dict__ and str(copy) == str(error)


def test_providers_are_django_free():
    import subprocess
    import sys

    code = (
        "import sys, botapp.providers, sandbox.google;"
        "sys.exit(1 if any(m == 'django' or m.startswith('django.') for m in sys.modules) else 0)"
    )
    root = Path(__file__).resolve().parents[2]
    assert subprocess.run([sys.executable, "-c", code], cwd=root, check=False).returncode == 0


def test_config_repr_hides_keys(config):
    assert GEMINI_KEY not in repr(config) and VERTEX_KEY not in repr(config)


def test_registry(config):
    assert isinstance(get_provider("google-gemini-image", config=config), NanoBananaProvider)
    assert isinstance(get_provider("google-veo", config=config), VeoProvider)
    assert isinstance(get_provider("google-omni", config=config), OmniProvider)
    assert isinstance(get_provider("demo", config=config), DemoProvider)
    assert get_provider("google-veo", config=config) is get_provider("google-veo", config=config)
    with pytest.raises(PermanentError) as info:
        get_provider("openai", config=config)
    assert info.value.code == "unknown_provider"
    with pytest.raises(PermanentError) as info:  # Imagen 4 was shut down: old rows name the family
        get_provider("google-imagen", config=config)
    assert info.value.code == "model_retired" and "shut down" in info.value.message


def test_imagen_is_gone_from_the_code():
    """Imagen 4 was shut down: nothing calls `generate_images` or names an Imagen provider any more."""
    root = Path(__file__).resolve().parents[2]
    sources = [p for folder in ("botapp", "sandbox", "bench") for p in (root / folder).rglob("*.py")]
    assert sources
    offenders = [
        str(p.relative_to(root))
        for p in sources
        if "migrations" not in p.parts and ("generate_images(" in (text := p.read_text()) or "ImagenProvider" in text)
    ]
    assert offenders == []


def test_submission_and_poll_outcome_cannot_be_confused():
    result = ProviderResult(media=[])
    assert Submission.done(result).is_done and Submission.pending("op").is_pending
    assert PollOutcome.done(result).result is result and PollOutcome.pending(5.0).progress == 5.0
    with pytest.raises(ValueError):
        Submission.pending("")
    with pytest.raises(ValueError):
        PollOutcome(PollOutcome.pending().state, result=result)


def test_error_hierarchy():
    for cls in (SafetyBlocked, InvalidInput, RateLimited, Transient, ProviderBusy, OperationTimeout, PermanentError):
        assert issubclass(cls, ProviderError)
    assert issubclass(ProviderBusy, Transient)
    assert RateLimited("x").retryable and ProviderBusy("x").retryable and not PermanentError("x").retryable
    assert not SafetyBlocked("IMAGE_SAFETY").retryable


@pytest.mark.parametrize(
    ("error", "expected", "code"),
    [
        ({"code": 3, "message": "bad"}, InvalidInput, "invalid_input"),
        ({"code": 3, "message": "violated Vertex AI's usage guidelines"}, SafetyBlocked, "safety_blocked"),
        ({"code": 4, "message": "deadline"}, OperationTimeout, "operation_timeout"),
        ({"code": 8, "message": "quota"}, RateLimited, "rate_limited"),
        ({"code": 13, "message": "internal"}, ProviderBusy, "operation_failed_transient"),
        ({"code": 14, "message": "unavailable"}, ProviderBusy, "operation_failed_transient"),
        ({"code": 9, "message": "precondition"}, PermanentError, "operation_failed"),
        ({"message": "weird"}, PermanentError, "operation_failed"),
    ],
)
def test_map_operation_error(error, expected, code):
    mapped = map_operation_error(error)
    assert type(mapped) is expected and mapped.code == code


@pytest.mark.parametrize(
    ("exc", "expected", "code"),
    [
        (genai_errors.ClientError(429, {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}), RateLimited, None),
        (genai_errors.ClientError(409, {"error": {"code": 409, "status": "ABORTED"}}), Transient, "transient"),
        (
            genai_errors.ClientError(400, {"error": {"code": 400, "status": "FAILED_PRECONDITION"}}),
            PermanentError,
            "failed_precondition",
        ),
        (genai_errors.ServerError(502, {"message": "bad gateway"}), ProviderBusy, None),
        (httpx.ReadTimeout("slow"), Transient, "timeout"),
        (httpx.ConnectError("refused"), Transient, "network"),
        (ValueError("only supported in Gemini Enterprise Agent Platform mode"), PermanentError, "backend_unsupported"),
        (ValueError("bad value"), InvalidInput, None),
        (RuntimeError("boom"), PermanentError, "unexpected"),
    ],
)
def test_map_exception(exc, expected, code):
    mapped = map_exception(exc)
    assert type(mapped) is expected
    if code:
        assert mapped.code == code


def test_parse_markers():
    assert parse_markers("plain") is None
    s = parse_markers("[[safety]] [[latency:0.5]] [[polls:4]]")
    assert s.finish_reason == "IMAGE_SAFETY" and s.rai_filtered == IMAGEN_RAI_MESSAGE
    assert s.latency == 0.5 and s.op_polls == 4
    assert parse_markers("[[error:429]][[retry_after:3]]") == Scenario(http_error=429, retry_delay=3.0)


# --------------------------------------------------------------------------------------------
# The fake in the running event loop, and concurrency
# --------------------------------------------------------------------------------------------


async def test_fake_server_in_the_current_loop():
    async with FakeGoogleServer(default=Scenario(op_polls=1)) as srv:
        cfg = GoogleConfig(vertex_api_key=VERTEX_KEY, vertex_base_url=srv.base_url)
        provider = VeoProvider(cfg)
        req = video_req()
        submission = await asyncio.to_thread(provider.submit, req)
        outcome = await asyncio.to_thread(provider.poll, submission.operation_id, req)
        assert outcome.is_done and outcome.result.media[0].data == srv.video_bytes()


async def test_many_concurrent_operations_are_cheap():
    """500 operations in flight, each done at its 2nd poll; polls are answered from tiny state."""
    async with (
        FakeGoogleServer(default=Scenario(op_polls=2), record=False) as srv,
        aiohttp.ClientSession(srv.base_url) as client,
    ):

        async def post(path: str, body: dict) -> dict:
            async with client.post(path, json=body) as response:
                return await response.json()

        async def fetch(name: str) -> dict:
            resource = name.rpartition("/operations/")[0]
            return await post(f"/v1beta1/{resource}:fetchPredictOperation", {"operationName": name})

        url = f"/v1beta1/publishers/google/models/{VEO_MODEL}:predictLongRunning"
        created = await asyncio.gather(*(post(url, {"instances": [{"prompt": "p"}]}) for _ in range(500)))
        names = [op["name"] for op in created]
        assert srv.operation_count == 500
        first = await asyncio.gather(*(fetch(n) for n in names))
        assert not any(op.get("done") for op in first)
        second = await asyncio.gather(*(fetch(n) for n in names))
        assert all(op.get("done") and op["response"]["videos"] for op in second)
        assert srv.requests == [] and srv.counts["fetchPredictOperation"] == 1000


@pytest.mark.parametrize("backend", ["gemini", "vertex"])
def test_the_client_keeps_its_pool_of_connections_alive(backend, settings):
    """The poller's and the worker's threads share one client: its pool keeps `http_pool` connections
    alive (httpx's default keeps 20, so a busier process opened and closed one per call), and the
    engine's configuration takes the size from GOOGLE_HTTP_POOL_SIZE."""
    from botapp.engine.backends import google_config
    from botapp.providers.google.client import clear_client_cache, get_client

    client = get_client(GoogleConfig(api_key="k", vertex_api_key="v", http_pool=7), backend)
    try:
        pool = client._api_client._httpx_client._transport._pool
        assert (pool._max_connections, pool._max_keepalive_connections) == (7, 7)
    finally:
        clear_client_cache()
    settings.GOOGLE_HTTP_POOL_SIZE = 48
    assert google_config().http_pool == 48
