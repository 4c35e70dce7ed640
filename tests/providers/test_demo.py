"""The offline demo provider: real PNGs and MP4s, stateless long-running video operations."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image

from botapp.providers import (
    DemoProvider,
    InputImage,
    PermanentError,
    ProviderBusy,
    ProviderRequest,
    SafetyBlocked,
)
from botapp.providers.demo import OPERATION_PREFIX, render_image, size_for_ratio
from botapp.providers.media import probe_mp4


def _solid_png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def image_req(prompt: str = "a lighthouse at dawn", **kw) -> ProviderRequest:
    return ProviderRequest(provider_model_id="demo-image", kind="image", prompt=prompt, **kw)


def video_req(prompt: str = "a lighthouse at dawn", **kw) -> ProviderRequest:
    return ProviderRequest(provider_model_id="demo-video", kind="video", prompt=prompt, **kw)


@pytest.mark.parametrize(
    ("ratio", "size"),
    [("1:1", (768, 768)), ("16:9", (768, 432)), ("9:16", (432, 768)), ("3:4", (576, 768)), ("4:3", (768, 576))],
)
def test_demo_image_is_a_png_with_the_aspect_ratio(ratio, size):
    submission = DemoProvider().submit(image_req(params={"aspect_ratio": ratio}))
    assert submission.is_done
    result = submission.result
    assert result.is_demo
    item = result.media[0]
    assert item.mime_type == "image/png" and (item.width, item.height) == size
    with Image.open(io.BytesIO(item.data)) as im:
        im.verify()
    with Image.open(io.BytesIO(item.data)) as im:
        assert im.format == "PNG" and im.size == size


def test_demo_image_is_deterministic_per_prompt():
    a = render_image("same prompt", long_side=128)
    b = render_image("same prompt", long_side=128)
    c = render_image("other prompt", long_side=128)
    assert a.tobytes() == b.tobytes() != c.tobytes()


def test_demo_edit_uses_the_input_images():
    red, blue = _solid_png((255, 0, 0)), _solid_png((0, 0, 255))
    req = image_req("combine", input_images=[InputImage(red), InputImage(blue)], params={"aspect_ratio": "16:9"})
    result = DemoProvider().submit(req).result
    assert result.metadata["input_images"] == 2
    with Image.open(io.BytesIO(result.media[0].data)) as im:
        rgb = im.convert("RGB")
        width, height = rgb.size
        left = rgb.getpixel((width // 4, height // 2))
        right = rgb.getpixel((3 * width // 4, height // 2))
    assert left[0] > 150 and left[2] < 120  # reddish (tinted) half
    assert right[2] > 150 and right[0] < 120  # bluish (tinted) half


def test_demo_number_of_images():
    result = DemoProvider().submit(image_req(params={"number_of_images": 2})).result
    assert len(result.media) == 2 and result.media[0].data != result.media[1].data


def test_demo_video_is_long_running_and_a_valid_mp4():
    provider = DemoProvider(delay_seconds=0.3)
    req = video_req(params={"aspect_ratio": "16:9", "duration_seconds": 4})
    submission = provider.submit(req)
    assert submission.is_pending
    assert submission.operation_id.startswith(OPERATION_PREFIX)

    pending = provider.poll(submission.operation_id, req)
    assert pending.is_pending and 0 <= pending.progress < 100
    time.sleep(0.3)

    # another instance (another worker process) can finish it: the state is in the id
    outcome = DemoProvider(delay_seconds=0.3).poll(submission.operation_id, req)
    assert outcome.is_done
    result = outcome.result
    assert result.is_demo
    item = result.media[0]
    assert item.mime_type == "video/mp4"
    assert item.data[4:8] == b"ftyp"
    info = probe_mp4(item.data)
    assert info is not None and info.faststart
    assert info.duration == pytest.approx(4.0, abs=0.15)
    assert (info.width, info.height) == (480, 270) == (item.width, item.height)
    assert item.duration == pytest.approx(4.0, abs=0.15)


def test_demo_vertical_short_video_frames_decode():
    import imageio.v3 as iio

    provider = DemoProvider(delay_seconds=0)
    req = video_req(params={"aspect_ratio": "9:16", "duration_seconds": 2})
    outcome = provider.poll(provider.submit(req).operation_id, req)
    data = outcome.result.media[0].data
    info = probe_mp4(data)
    assert (info.width, info.height) == (270, 480)
    assert info.duration == pytest.approx(2.0, abs=0.15)
    frames = iio.imread(data, extension=".mp4", plugin="FFMPEG")  # every frame decodes
    assert frames.shape[0] == 24 and frames.shape[1:] == (480, 270, 3)


def test_demo_image_to_video_uses_the_image():
    provider = DemoProvider(delay_seconds=0)
    req = video_req(input_images=[InputImage(_solid_png((0, 255, 0)))], params={"duration_seconds": 2})
    data = provider.poll(provider.submit(req).operation_id, req).result.media[0].data
    import imageio.v3 as iio

    first = iio.imread(data, index=0, extension=".mp4", plugin="FFMPEG")
    r, g, b = first[first.shape[0] // 3, first.shape[1] // 2]
    assert g > 150 and r < 150 and b < 150


def test_demo_markers():
    provider = DemoProvider(delay_seconds=0)
    with pytest.raises(SafetyBlocked) as info:
        provider.submit(image_req("[[safety]] please"))
    assert info.value.reason == "DEMO_SAFETY"
    with pytest.raises(PermanentError):
        provider.submit(image_req("[[fail]]"))
    # a video is refused late, at poll time, like Veo
    req = video_req("[[busy]]")
    submission = provider.submit(req)
    with pytest.raises(ProviderBusy):
        provider.poll(submission.operation_id, req)


def test_demo_bad_operation_id():
    with pytest.raises(PermanentError):
        DemoProvider().poll("projects/x/operations/1", video_req())
    with pytest.raises(PermanentError):
        DemoProvider().poll(f"{OPERATION_PREFIX}notanumber-abc", video_req())


def test_sizes_are_even():
    for ratio in [(16, 9), (9, 16), (1, 1), (21, 9), (4, 5)]:
        w, h = size_for_ratio(ratio, 480)
        assert w % 2 == 0 and h % 2 == 0
