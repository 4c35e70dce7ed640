"""The offline demo honours the options Google's models take, deterministically, so `make run` without
keys shows them: an image's resolution, a video's first and last frame, references and extension,
even when polled without the photos (as the engine polls)."""

from __future__ import annotations

import io

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from botapp.providers import DemoProvider, InputImage, InputVideo, ProviderRequest
from botapp.providers.demo import OPERATION_PREFIX, VideoLook
from botapp.providers.media import probe_mp4

RED, GREEN, BLUE = (230, 20, 20), (20, 200, 20), (20, 20, 230)


def png(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def video(**kw):
    """Submit with the inputs, poll with none of them (what the engine does), return the result."""
    params = kw.pop("params", {"aspect_ratio": "16:9", "duration_seconds": 4})
    provider = DemoProvider(delay_seconds=0)
    submission = provider.submit(ProviderRequest(provider_model_id="demo", kind="video", prompt="a fox", **kw))
    polled = ProviderRequest(provider_model_id="demo", kind="video", prompt="a fox", params=params)
    return provider.poll(submission.operation_id, polled).result, submission.operation_id


def frame_mean(data: bytes, index: int) -> np.ndarray:
    frames = iio.imread(data, extension=".mp4", plugin="FFMPEG")
    return frames[index].reshape(-1, 3).mean(axis=0)


@pytest.mark.parametrize(("resolution", "side"), [(None, 768), ("1K", 768), ("2K", 1152), ("4K", 1536), ("4k", 1536)])
def test_image_resolution_sets_the_size(resolution, side):
    params = {"aspect_ratio": "16:9", **({"resolution": resolution} if resolution else {})}
    result = DemoProvider().submit(ProviderRequest(provider_model_id="d", kind="image", prompt="x", params=params))
    item = result.result.media[0]
    assert item.width == side and item.height == round(side * 9 / 16) // 2 * 2
    assert result.result.metadata["resolution"] == ((resolution or "").upper() or None)


def test_first_and_last_frame_colour_the_video_without_the_photos_at_poll():
    plain, _ = video()
    framed, op_id = video(input_images=[InputImage(png(RED))], last_frame=InputImage(png(BLUE)))
    assert VideoLook.decode(op_id) == VideoLook(first=RED, last=BLUE)
    first_plain, first_framed = frame_mean(plain.media[0].data, 0), frame_mean(framed.media[0].data, 0)
    last_plain, last_framed = frame_mean(plain.media[0].data, -1), frame_mean(framed.media[0].data, -1)
    assert first_framed[0] - first_plain[0] > 30  # starts redder
    assert last_framed[2] - last_plain[2] > 60 and last_framed[2] > last_framed[0] + 60  # ends blue
    assert framed.metadata["inputs"] == {
        "first_frame": True,
        "last_frame": True,
        "reference_images": 0,
        "extension": False,
    }


def test_reference_images_show_as_swatches():
    plain, _ = video()
    with_refs, op_id = video(reference_images=[InputImage(png(c)) for c in (RED, GREEN, BLUE)])
    assert VideoLook.decode(op_id).references == (RED, GREEN, BLUE)
    assert with_refs.metadata["inputs"]["reference_images"] == 3
    frames = iio.imread(with_refs.media[0].data, extension=".mp4", plugin="FFMPEG")
    plain_frames = iio.imread(plain.media[0].data, extension=".mp4", plugin="FFMPEG")
    assert np.abs(frames[0].astype(int) - plain_frames[0].astype(int)).mean() > 1


def test_extension_is_longer_than_its_source_and_labelled():
    source, _ = video(params={"aspect_ratio": "16:9", "duration_seconds": 4})
    source_seconds = probe_mp4(source.media[0].data).duration
    extended, op_id = video(
        source_video=InputVideo(source.media[0].data), params={"aspect_ratio": "16:9", "duration_seconds": 7}
    )
    assert VideoLook.decode(op_id).extends == pytest.approx(source_seconds, abs=0.01)
    assert extended.media[0].duration == pytest.approx(source_seconds + 3, abs=0.15)
    assert extended.metadata["inputs"]["extension"] is True


def test_resolution_and_audio_in_the_metadata():
    result, _ = video(params={"resolution": "1080p", "generate_audio": False, "duration_seconds": 2})
    assert result.metadata["resolution"] == "1080p" and result.metadata["generate_audio"] is False


def test_operation_ids_stay_short_and_foreign_looks_are_plain():
    _, op_id = video(
        input_images=[InputImage(png(RED))],
        last_frame=InputImage(png(BLUE)),
        reference_images=[InputImage(png(GREEN))] * 3,
        source_video=InputVideo(b"\x00\x00\x00\x18ftypmp42 not really an mp4"),
    )
    assert op_id.startswith(OPERATION_PREFIX) and len(op_id) < 255
    assert DemoProvider.submitted_at_ms(op_id) > 0
    assert VideoLook.decode(f"{OPERATION_PREFIX}1-abc~fzzzzzz_q1") == VideoLook()
    assert VideoLook.decode(f"{OPERATION_PREFIX}1-abc") == VideoLook()
