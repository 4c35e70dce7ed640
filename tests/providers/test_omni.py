"""Gemini Omni Flash (OmniProvider) with the REAL google-genai SDK against the fake Google over HTTP (no
patching): what reaches Google for each kind of turn, the clip that comes back, and Google's refusals
and faults as typed provider errors."""

from __future__ import annotations

import base64
import dataclasses
import io
import socket
import time

import pytest
from PIL import Image

from botapp.providers import (
    GoogleConfig,
    InputImage,
    InputVideo,
    InvalidInput,
    OmniProvider,
    PermanentError,
    ProviderBusy,
    ProviderRequest,
    ProviderResult,
    RateLimited,
    SafetyBlocked,
    Transient,
)
from botapp.providers.google.omni import _code_name, strip_audio
from botapp.providers.media import probe_mp4
from sandbox.google import Scenario

OMNI = "gemini-omni-1.2-flash"
GEMINI_KEY = "omni-gemini-key"
VERTEX_KEY = "omni-vertex-key"


def png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, format="JPEG")
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


@pytest.fixture
def omni(config) -> OmniProvider:
    return OmniProvider(config)


def request(prompt: str = "a paper boat on a river", **kw) -> ProviderRequest:
    kw.setdefault("params", {"aspect_ratio": "16:9", "duration_seconds": 6, "resolution": "720p"})
    return ProviderRequest(provider_model_id=OMNI, kind="video", prompt=prompt, **kw)


def run(provider: OmniProvider, req: ProviderRequest, max_polls: int = 6) -> ProviderResult:
    submission = provider.submit(req)
    assert submission.is_pending and submission.operation_id
    for _ in range(max_polls):
        outcome = provider.poll(submission.operation_id, req)
        if outcome.is_done:
            return outcome.result
    raise AssertionError("the interaction did not finish")


def blocks(sent) -> list[tuple[str, str]]:
    """(type, text or mime type) of each content block Google received."""
    return [(b["type"], b.get("text") or b.get("mime_type")) for b in sent.content]


# --------------------------------------------------------------------------------------------
# What reaches Google, what comes back
# --------------------------------------------------------------------------------------------


def test_text_to_video_at_1080p(server, config, omni):
    req = request(params={"aspect_ratio": "9:16", "duration_seconds": 5, "resolution": "1080p", "seed": 42})
    submission = omni.submit(req)
    assert submission.is_pending
    sent = server.last("createInteraction")
    assert (sent.path, sent.api_key, sent.backend) == ("/v1/interactions", GEMINI_KEY, "gemini")
    assert sent.json == {
        "model": OMNI,
        "background": True,
        "generation_config": {"seed": 42, "video_config": {"task": "text_to_video"}},
        "input": [{"type": "user_input", "content": [{"type": "text", "text": "a paper boat on a river"}]}],
        "response_format": {"type": "video", "resolution": "1080p", "duration": "5s", "aspect_ratio": "9:16"},
        "response_modalities": ["video"],
        "store": True,
    }
    poller = OmniProvider(dataclasses.replace(config))  # another worker polls with the id alone
    outcomes = [poller.poll(submission.operation_id, req) for _ in range(2)]
    assert [o.is_done for o in outcomes] == [False, True]
    result = outcomes[-1].result
    item = result.media[0]
    info = probe_mp4(item.data)
    assert item.mime_type == "video/mp4" and info.has_audio  # native audio
    assert item.duration == 5 and (item.width, item.height) == (72, 128)
    assert result.metadata["interaction_id"] == submission.operation_id
    assert result.metadata["task"] == "text_to_video" and result.metadata["audio_stripped"] is False
    assert [r.path for r in server.requests_for("getInteraction")] == [
        f"/v1/interactions/{submission.operation_id}"
    ] * 2


def test_4k_is_sent_lower_case(server, omni):
    omni.submit(request(params={"resolution": "4K", "duration_seconds": 8}))
    assert server.last("createInteraction").response_format == {"type": "video", "resolution": "4k", "duration": "8s"}


def test_six_reference_images(server, omni):
    images = [png((40 * i, 0, 0)) for i in range(5)] + [jpeg((0, 0, 200))]
    result = run(omni, request("these six things in a kitchen", reference_images=[InputImage(i) for i in images]))
    sent = server.last("createInteraction")
    assert sent.video_task == "reference_to_video"
    assert blocks(sent) == [("text", "these six things in a kitchen")] + [("image", "image/png")] * 5 + [
        ("image", "image/jpeg")
    ]
    assert [data for _, data in sent.input_images] == images
    assert result.metadata["task"] == "reference_to_video"


def test_first_frame(server, omni):
    start = jpeg((10, 200, 30))
    run(omni, request(input_images=[InputImage(start, "image/png")]))  # a JPEG labelled PNG: its bytes decide
    sent = server.last("createInteraction")
    assert sent.video_task == "image_to_video" and sent.input_images == [("image/jpeg", start)]


def test_extension_sends_the_clip_and_the_seconds_it_adds(server, omni):
    source = run(omni, request(params={"duration_seconds": 8, "aspect_ratio": "16:9"})).media[0].data
    extended = run(omni, request("the boat sails on", source_video=InputVideo(source), params={"duration_seconds": 7}))
    sent = server.last("createInteraction")
    assert sent.video_task == "extend" and sent.response_format["duration"] == "7s"
    assert sent.source_video == ("video/mp4", source)
    assert blocks(sent) == [("text", "the boat sails on"), ("video", "video/mp4")]
    assert extended.media[0].duration == 15 and extended.metadata["task"] == "extend"


def test_edit_by_conversation_then_an_edit_of_the_edit(server, omni):
    first = run(omni, request())
    edit_req = request("make it night", previous_interaction_id=first.metadata["interaction_id"], params={})
    edit = run(omni, edit_req)
    again_req = request("now add rain", previous_interaction_id=edit.metadata["interaction_id"], params={})
    again = run(omni, again_req)
    sent = server.requests_for("createInteraction")
    assert [r.previous_interaction_id for r in sent] == [
        None,
        first.metadata["interaction_id"],
        edit.metadata["interaction_id"],
    ]
    assert [r.video_task for r in sent] == ["text_to_video", "edit", "edit"]
    assert blocks(sent[2]) == [("text", "now add rain")] and sent[2].response_format == {"type": "video"}
    assert again.metadata["previous_interaction_id"] == edit.metadata["interaction_id"]
    assert again.metadata["task"] == "edit"
    videos = [r.media[0].data for r in (first, edit, again)]
    assert len(set(videos)) == 3  # each turn a different clip
    assert {r.media[0].duration for r in (first, edit, again)} == {6}  # an edit keeps the length


def test_vertex_and_the_default_backend(server, config):
    run(OmniProvider(config), request(backend="vertex"))
    assert {(r.path.split("/interactions")[0], r.api_key) for r in server.requests} == {("/v1beta1", VERTEX_KEY)}
    server.reset()
    OmniProvider(dataclasses.replace(config, use_vertex=True)).submit(request())
    assert server.last("createInteraction").backend == "vertex"


def test_sound_off_strips_the_audio_track(server, omni):
    result = run(omni, request(params={"duration_seconds": 4, "generate_audio": False}))
    info = probe_mp4(result.media[0].data)
    assert not info.has_audio and info.duration == pytest.approx(4, abs=0.1) and info.faststart
    assert result.metadata["audio_stripped"] is True and result.metadata["generate_audio"] is False
    assert "generate_audio" not in str(server.last("createInteraction").json)  # Omni has no audio switch


def test_negative_prompt_is_not_sent(server, omni):
    result = run(omni, request(negative_prompt="people"))
    assert "people" not in str(server.last("createInteraction").json)
    assert result.metadata["negative_prompt_dropped"] is True


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({"reference_images": [InputImage(png((i, 0, 0))) for i in range(7)]}, "too_many_images"),
        ({"last_frame": InputImage(png((1, 2, 3)))}, "input_not_supported"),
        ({"input_images": [InputImage(png((1, 2, 3)))] * 2}, "input_not_supported"),
        (
            {"input_images": [InputImage(png((1, 2, 3)))], "reference_images": [InputImage(png((3, 2, 1)))]},
            "input_not_supported",
        ),
        ({"reference_images": [InputImage(b"%PDF-1.4", "application/pdf")]}, "bad_image"),
        ({"params": {"aspect_ratio": "wide"}}, "unsupported_aspect_ratio"),
    ],
)
def test_what_omni_cannot_take_is_refused_before_any_call(server, omni, kw, code):
    with pytest.raises(InvalidInput) as info:
        omni.submit(request(**kw))
    assert info.value.code == code
    assert server.requests == []


# --------------------------------------------------------------------------------------------
# Google's refusals and faults
# --------------------------------------------------------------------------------------------


def test_unknown_or_forgotten_previous_interaction_is_interaction_not_found(server, omni):
    with pytest.raises(PermanentError) as info:
        omni.submit(request("make it night", previous_interaction_id="v1_gone"))
    assert info.value.code == "interaction_not_found" and not info.value.retryable
    assert info.value.details["http_status"] == 404
    first = run(omni, request())
    server.forget_interaction(first.metadata["interaction_id"])
    with pytest.raises(PermanentError) as info:
        omni.submit(request("make it night", previous_interaction_id=first.metadata["interaction_id"]))
    assert info.value.code == "interaction_not_found"


def test_retired_model_is_model_not_found(server, omni):
    server.retire_model(OMNI)
    with pytest.raises(PermanentError) as info:
        omni.submit(request())
    assert info.value.code == "model_not_found"
    with pytest.raises(PermanentError) as info:  # an edit on a retired model: the model's 404, not the clip's
        omni.submit(request("night", previous_interaction_id="v1_x"))
    assert info.value.code == "model_not_found"


def test_a_forgotten_interaction_at_poll_is_the_operations_404(server, omni):
    submission = omni.submit(request())
    server.forget_interaction(submission.operation_id)
    with pytest.raises(PermanentError) as info:
        omni.poll(submission.operation_id, request())
    assert info.value.code == "model_not_found"  # the engine reads a poll's 404 as the operation's


def test_429_is_rate_limited_without_sdk_retries(server, omni):
    server.queue_scenarios(OMNI, [Scenario.error(429, retry_delay=4)])
    started = time.monotonic()
    with pytest.raises(RateLimited) as info:
        omni.submit(request())
    assert time.monotonic() - started < 2 and info.value.retry_after == 4
    assert server.counts["createInteraction"] == 1
    assert omni.submit(request()).is_pending


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_is_provider_busy_without_sdk_retries(server, omni, status):
    server.set_model_scenario(OMNI, Scenario.error(status))
    started = time.monotonic()
    with pytest.raises(ProviderBusy) as info:
        omni.submit(request())
    assert info.value.retryable and time.monotonic() - started < 2
    assert server.counts["createInteraction"] == 1


def test_a_poll_5xx_is_provider_busy_then_it_goes_on(server, omni):
    req = request("[[poll_fail_first:1]][[polls:1]]")
    submission = omni.submit(req)
    with pytest.raises(ProviderBusy):
        omni.poll(submission.operation_id, req)
    assert omni.poll(submission.operation_id, req).is_done
    assert server.counts["getInteraction"] == 2


def test_400_is_invalid_input(server, omni):
    with pytest.raises(InvalidInput) as info:
        omni.submit(request(params={"duration_seconds": 20}))
    assert "Unsupported duration: 20s" in info.value.message


@pytest.mark.parametrize(
    ("marker", "error", "code", "reason"),
    [
        ("[[safety]]", SafetyBlocked, "safety_blocked", "SAFETY"),
        ("[[blocked]]", SafetyBlocked, "safety_blocked", "PROHIBITED_CONTENT"),
        ("[[op_error]]", ProviderBusy, "operation_failed_transient", None),
        ("[[op_error:8]]", RateLimited, "rate_limited", None),
        ("[[op_error:3]]", InvalidInput, "invalid_input", None),
        ("[[op_error:7]]", PermanentError, "operation_failed", None),
    ],
)
def test_a_failed_interaction_is_a_typed_error(server, omni, marker, error, code, reason):
    with pytest.raises(error) as info:
        run(omni, request(f"x {marker}"))
    assert type(info.value) is error and info.value.code == code
    assert info.value.details["interaction_errors"]
    if reason:
        assert info.value.reason == reason and info.value.user_reason
    if marker == "[[safety]]":
        assert info.value.details["support_codes"] == ["58061214"]
    if error is ProviderBusy:
        assert "operation_error" in info.value.details  # the engine starts a new interaction


def test_timeout_and_network_errors_are_transient(server, config):
    slow = OmniProvider(dataclasses.replace(config, http_timeout=0.3))
    with pytest.raises(Transient) as info:
        slow.submit(request("[[latency:1.5]]"))
    assert info.value.code == "timeout"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    closed = GoogleConfig(api_key=GEMINI_KEY, gemini_base_url=f"http://127.0.0.1:{port}", http_timeout=2)
    with pytest.raises(Transient) as info:
        OmniProvider(closed).submit(request())
    assert info.value.code == "network"


def test_keys_never_reach_the_error_message(server, omni):
    echo = f"API key {GEMINI_KEY} is bad, see https://example.com/v1/interactions?alt=json&key={GEMINI_KEY}"
    server.set_model_scenario(OMNI, Scenario.error(400, echo))
    with pytest.raises(InvalidInput) as info:
        omni.submit(request())
    assert GEMINI_KEY not in info.value.message and GEMINI_KEY not in str(info.value)
    assert "key=[redacted]" in info.value.message


def test_strip_audio_failure_is_permanent():
    with pytest.raises(PermanentError) as info:
        strip_audio(b"\x00\x00\x00\x18ftypmp42 not a video")
    assert info.value.code == "audio_strip_failed"


@pytest.mark.parametrize(
    ("code", "name", "number"),
    [
        (13, "INTERNAL", 13),
        ("8", "RESOURCE_EXHAUSTED", 8),
        ("UNAVAILABLE", "UNAVAILABLE", 14),
        ("https://ai.google.dev/errors/resource-exhausted", "RESOURCE_EXHAUSTED", 8),
        ("SAFETY", "SAFETY", 0),
        (None, "", 0),
    ],
)
def test_interaction_error_codes(code, name, number):
    assert _code_name(code) == (name, number)


def test_output_video_decodes_base64_of_either_alphabet():
    from botapp.providers.google.omni import _unb64

    data = bytes(range(256))
    assert (
        _unb64(base64.b64encode(data).decode()) == data == _unb64(base64.urlsafe_b64encode(data).decode().rstrip("="))
    )
