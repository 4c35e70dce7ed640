"""Veo 3.1's inputs with the REAL google-genai SDK against the fake Google: the exact JSON Google gets
for a first + last frame, reference images, an extension, audio, a negative prompt and 4k, and
Google's refusals of impossible combinations mapped to clean provider errors."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from botapp.providers import (
    GoogleConfig,
    InputImage,
    InputVideo,
    InvalidInput,
    NanoBananaProvider,
    PermanentError,
    ProviderRequest,
    ProviderResult,
    VeoProvider,
)
from botapp.providers.media import probe_mp4

VEO = "veo-3.1-generate-001"
NB = "gemini-3.1-flash-image"


def png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


RED, GREEN, BLUE, GREY = png((255, 0, 0)), png((0, 255, 0)), png((0, 0, 255)), jpeg((128, 128, 128))


FAKE_GOOGLE_OPTIONS = {"default": None}


@pytest.fixture
def veo(server) -> VeoProvider:
    return VeoProvider(GoogleConfig(vertex_api_key="vertex-key", vertex_base_url=server.base_url, http_timeout=10))


def request(prompt: str = "a paper boat on a river", **kw) -> ProviderRequest:
    kw.setdefault("params", {"aspect_ratio": "16:9", "duration_seconds": 8, "resolution": "720p"})
    return ProviderRequest(provider_model_id=VEO, kind="video", prompt=prompt, **kw)


def run(provider: VeoProvider, req: ProviderRequest) -> ProviderResult:
    submission = provider.submit(req)
    assert submission.is_pending
    for _ in range(10):
        outcome = provider.poll(submission.operation_id, req)
        if outcome.is_done:
            return outcome.result
    raise AssertionError("the operation did not finish")


# --------------------------------------------------------------------------------------------
# What reaches Google
# --------------------------------------------------------------------------------------------


def test_first_and_last_frame(server, veo):
    req = request(
        input_images=[InputImage(RED, "image/png")],
        last_frame=InputImage(GREY, "image/png"),  # a JPEG labelled PNG: its bytes decide
    )
    result = run(veo, req)
    sent = server.last("predictLongRunning")
    assert sent.path == f"/v1beta1/publishers/google/models/{VEO}:predictLongRunning"
    assert set(sent.instance) == {"prompt", "image", "lastFrame"}
    assert sent.instance["prompt"] == "a paper boat on a river"
    assert sent.first_frame == ("image/png", RED)
    assert sent.last_frame == ("image/jpeg", GREY)
    assert sent.parameters == {"sampleCount": 1, "durationSeconds": 8, "aspectRatio": "16:9", "resolution": "720p"}
    assert result.media[0].data == server.video_bytes()


def test_three_reference_images_as_assets(server, veo):
    req = request(reference_images=[InputImage(RED), InputImage(GREEN), InputImage(BLUE)])
    run(veo, req)
    sent = server.last("predictLongRunning")
    assert set(sent.instance) == {"prompt", "referenceImages"}
    assert sent.reference_images == [
        ("image/png", RED, "ASSET"),
        ("image/png", GREEN, "ASSET"),
        ("image/png", BLUE, "ASSET"),
    ]
    assert sent.instance["referenceImages"][0] == {
        "image": {"bytesBase64Encoded": sent.instance["referenceImages"][0]["image"]["bytesBase64Encoded"],
                  "mimeType": "image/png"},
        "referenceType": "ASSET",
    }  # fmt: skip
    assert sent.parameters["durationSeconds"] == 8


def test_audio_off_negative_prompt_and_4k(server, veo):
    req = request(
        negative_prompt="text, watermarks",
        params={"aspect_ratio": "9:16", "duration_seconds": 8, "resolution": "4K", "generate_audio": False},
    )
    result = run(veo, req)
    sent = server.last("predictLongRunning")
    assert sent.parameters == {
        "sampleCount": 1,
        "durationSeconds": 8,
        "aspectRatio": "9:16",
        "resolution": "4k",  # Veo's spelling, whatever the request's case
        "negativePrompt": "text, watermarks",
        "generateAudio": False,
    }
    assert set(sent.instance) == {"prompt"}
    info = probe_mp4(result.media[0].data)
    assert (info.width, info.height) == (72, 128)


def test_audio_on_is_sent_and_absent_audio_is_not(server, veo):
    run(veo, request(params={"generate_audio": True}))
    assert server.last("predictLongRunning").parameters == {"sampleCount": 1, "generateAudio": True}
    run(veo, request(params={}))
    assert "generateAudio" not in server.last("predictLongRunning").parameters


def test_extension_of_a_video_veo_made(server, veo):
    first = run(veo, request())
    source = first.media[0].data
    assert probe_mp4(source).duration == pytest.approx(1.0)
    req = request(
        "the boat reaches the sea",
        source_video=InputVideo(source, "video/mp4"),
        params={"aspect_ratio": "16:9", "duration_seconds": 7, "resolution": "720p"},
    )
    extended = run(veo, req)
    sent = server.last("predictLongRunning")
    assert set(sent.instance) == {"prompt", "video"}
    assert sent.source_video == ("video/mp4", source)
    assert sent.parameters == {"sampleCount": 1, "durationSeconds": 7, "aspectRatio": "16:9", "resolution": "720p"}
    # The whole clip comes back: the source's second and 7 more; its length is read from the MP4.
    item = extended.media[0]
    assert probe_mp4(item.data).duration == pytest.approx(8.0)
    assert item.duration == pytest.approx(8.0)
    assert item.data != source
    # An extension of the extension is allowed too (the fake made it), and longer again.
    again = run(veo, request("then a storm", source_video=InputVideo(item.data), params={"duration_seconds": 7}))
    assert again.media[0].duration == pytest.approx(15.0)


def test_nano_banana_takes_no_video_inputs(server):
    provider = NanoBananaProvider(GoogleConfig(api_key="k", gemini_base_url=server.base_url))
    for extra in ({"last_frame": InputImage(RED)}, {"reference_images": [InputImage(RED)]}):
        req = ProviderRequest(provider_model_id=NB, kind="image", prompt="x", **extra)
        with pytest.raises(InvalidInput) as info:
            provider.submit(req)
        assert info.value.code == "input_not_supported"
    assert server.requests == []


def test_two_first_frames_are_refused_before_google(server, veo):
    with pytest.raises(InvalidInput) as info:
        veo.submit(request(input_images=[InputImage(RED), InputImage(GREEN)]))
    assert info.value.code == "input_not_supported"
    with pytest.raises(InvalidInput) as info:
        veo.submit(request(source_video=InputVideo(b"not a video", "text/plain")))
    assert info.value.code == "bad_video"
    assert server.requests == []


# --------------------------------------------------------------------------------------------
# Google's refusals (400 INVALID_ARGUMENT) as clean provider errors
# --------------------------------------------------------------------------------------------

REFUSALS = [
    (
        "references with a first frame",
        {"input_images": [InputImage(RED)], "reference_images": [InputImage(GREEN)]},
        {"duration_seconds": 8},
        "cannot be combined",
    ),
    ("a last frame alone", {"last_frame": InputImage(GREEN)}, {}, "lastFrame is only supported together with image"),
    ("four references", {"reference_images": [InputImage(RED)] * 4}, {"duration_seconds": 8}, "At most 3"),
    ("1080p at 6 s", {}, {"resolution": "1080p", "duration_seconds": 6}, "must be 8 for 1080p"),
    ("4k at 4 s", {}, {"resolution": "4k", "duration_seconds": 4}, "must be 8 for 4k"),
    ("references at 6 s", {"reference_images": [InputImage(RED)]}, {"duration_seconds": 6}, "with referenceImages"),
    ("a square video", {}, {"aspect_ratio": "1:1"}, "Unsupported aspect ratio: 1:1"),
    ("a resolution Veo lacks", {}, {"resolution": "480p"}, "Unsupported resolution"),
]


@pytest.mark.parametrize(("what", "inputs", "params", "message"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_google_refuses_impossible_combinations(server, veo, what, inputs, params, message):
    with pytest.raises(InvalidInput, match=message) as info:
        veo.submit(request(params=params, **inputs))
    assert info.value.code == "invalid_input"
    assert info.value.details == {"http_status": 400, "status": "INVALID_ARGUMENT"}
    assert len(server.requests_for("predictLongRunning")) == 1  # it reached Google, which refused it
    assert server.operation_count == 0


def test_extension_of_a_video_google_did_not_make_is_refused(server, veo):
    foreign = server.video_bytes()  # the same bytes, but never answered by this server (after reset)
    with pytest.raises(InvalidInput, match="only supported for videos generated by Veo"):
        veo.submit(request(source_video=InputVideo(foreign), params={"duration_seconds": 7}))
    server.mark_produced(foreign)
    assert veo.submit(request(source_video=InputVideo(foreign), params={"duration_seconds": 7})).is_pending


def test_extension_at_1080p_is_refused(server, veo):
    source = run(veo, request()).media[0].data
    with pytest.raises(InvalidInput, match="only supported at 720p"):
        veo.submit(request(source_video=InputVideo(source), params={"resolution": "1080p", "duration_seconds": 8}))


def test_extension_of_a_clip_over_30_seconds_is_refused(server, veo):
    long_clip = server.video_bytes(seconds=31)
    server.mark_produced(long_clip)
    with pytest.raises(InvalidInput, match="at most 30 seconds"):
        veo.submit(request(source_video=InputVideo(long_clip), params={}))


@pytest.mark.parametrize(
    ("backend", "words"),
    [("vertex", "Publisher Model `projects/"), ("gemini", f"models/{NB} is not found for API version v1")],
)
def test_a_retired_model_is_not_found(server, backend, words):
    server.retire_model(NB)
    config = GoogleConfig(
        api_key="k", vertex_api_key="k", gemini_base_url=server.base_url, vertex_base_url=server.base_url
    )
    req = ProviderRequest(provider_model_id=NB, kind="image", prompt="x", backend=backend)
    with pytest.raises(PermanentError) as info:
        NanoBananaProvider(config).submit(req)
    assert info.value.code == "model_not_found"
    assert words in info.value.message and "404 NOT_FOUND" in info.value.message


def test_a_retired_veo_model_is_not_found(server, veo):
    server.retire_model(VEO)
    with pytest.raises(PermanentError) as info:
        veo.submit(request())
    assert info.value.code == "model_not_found"
    assert server.operation_count == 0
