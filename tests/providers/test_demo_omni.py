"""The offline demo honours a Gemini Omni request, so the sandbox can make and edit Omni clips with no
keys: 3-15 s as asked, 360p smaller, up to 6 references, an extension of the seconds asked for, and an
edit by conversation (another take, labelled EDIT, with a demo interaction id to edit again); Veo's
demo videos stay as they were."""

from __future__ import annotations

import io

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from botapp.providers import DemoProvider, InputImage, InputVideo, ProviderRequest
from botapp.providers.demo import INTERACTION_PREFIX, VideoLook, edit_depth
from botapp.providers.media import probe_mp4

OMNI = "gemini-omni-1.2-flash"


def png(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def video(prompt: str = "a fox in the snow", model: str = OMNI, params: dict | None = None, **kw):
    """Submit, then poll with no photos (as the engine polls); the result and the operation id."""
    params = params if params is not None else {"aspect_ratio": "16:9", "duration_seconds": 6, "resolution": "720p"}
    provider = DemoProvider(delay_seconds=0)
    submission = provider.submit(
        ProviderRequest(provider_model_id=model, kind="video", prompt=prompt, params=params, **kw)
    )
    polled = ProviderRequest(
        provider_model_id=model,
        kind="video",
        prompt=prompt,
        params=params,
        previous_interaction_id=kw.get("previous_interaction_id"),
    )
    return provider.poll(submission.operation_id, polled).result, submission.operation_id


def mean(data: bytes, index: int = 0) -> np.ndarray:
    return iio.imread(data, index=index, extension=".mp4", plugin="FFMPEG").reshape(-1, 3).mean(axis=0)


@pytest.mark.parametrize(("seconds", "resolution", "size"), [(15, "360p", (320, 180)), (3, "1080p", (480, 270))])
def test_omni_clip_has_the_seconds_asked_for(seconds, resolution, size):
    result, _ = video(params={"aspect_ratio": "16:9", "duration_seconds": seconds, "resolution": resolution})
    item = result.media[0]
    assert item.duration == pytest.approx(seconds, abs=0.15)
    assert (item.width, item.height) == size
    assert result.metadata["interaction_id"].startswith(f"{INTERACTION_PREFIX}0-")
    assert result.metadata["task"] == "text_to_video" and result.metadata["label"] == f"DEMO {resolution}"


def test_six_references():
    colours = [(200, 0, 0), (0, 200, 0), (0, 0, 200), (200, 200, 0), (0, 200, 200), (200, 0, 200)]
    result, op_id = video(reference_images=[InputImage(png(c)) for c in colours])
    assert VideoLook.decode(op_id).references == tuple(colours)
    assert result.metadata["inputs"]["reference_images"] == 6 and result.metadata["task"] == "reference_to_video"


def test_an_extension_adds_the_seconds_asked_for():
    source, _ = video(params={"aspect_ratio": "16:9", "duration_seconds": 8})
    extended, _ = video(source_video=InputVideo(source.media[0].data), params={"duration_seconds": 7})
    assert extended.media[0].duration == pytest.approx(15, abs=0.2)
    assert extended.metadata["task"] == "extend" and "extended" in extended.metadata["label"]


def test_an_edit_by_conversation_is_another_take_labelled_edit():
    first, _ = video("a fox in the snow")
    edit, op_id = video("make it night", previous_interaction_id=first.metadata["interaction_id"])
    assert VideoLook.decode(op_id).edit == 1
    assert edit.metadata["label"].endswith("EDIT") and edit.metadata["task"] == "edit"
    assert edit.metadata["previous_interaction_id"] == first.metadata["interaction_id"]
    assert edit.metadata["interaction_id"].startswith(f"{INTERACTION_PREFIX}1-")
    assert edit.metadata["interaction_id"] != first.metadata["interaction_id"]
    plain, _ = video("make it night")  # the same words without an edit: not the same picture
    night, day = mean(edit.media[0].data), mean(plain.media[0].data)
    assert night[2] - night[0] > day[2] - day[0] + 20  # bluer: the night tint
    again, _ = video("now add rain", previous_interaction_id=edit.metadata["interaction_id"])
    assert again.metadata["label"].endswith("EDIT 2")
    assert again.metadata["interaction_id"].startswith(f"{INTERACTION_PREFIX}2-")


def test_the_edit_depth_survives_a_poll_without_the_previous_id():
    provider = DemoProvider(delay_seconds=0)
    req = ProviderRequest(provider_model_id=OMNI, kind="video", prompt="night", previous_interaction_id="v1_real")
    submission = provider.submit(req)
    polled = ProviderRequest(provider_model_id=OMNI, kind="video", prompt="night")
    result = provider.poll(submission.operation_id, polled).result
    assert result.metadata["label"].endswith("EDIT") and result.metadata["interaction_id"].startswith("demo-int-1-")


@pytest.mark.parametrize(
    ("previous", "depth"),
    [(None, None), ("v1_from_google", 1), ("demo-int-0-abc", 1), ("demo-int-4-abc", 5), ("demo-int-x-abc", 1)],
)
def test_edit_depth(previous, depth):
    assert edit_depth(previous) == depth


def test_veo_demo_videos_are_unchanged():
    result, op_id = video(model="veo-3.1-generate-001", params={"duration_seconds": 8, "resolution": "720p"})
    assert result.media[0].duration == pytest.approx(4.0, abs=0.15)  # the short demo length
    assert (result.media[0].width, result.media[0].height) == (480, 270)
    assert "interaction_id" not in result.metadata and "edit" not in result.metadata["inputs"]
    edit_ignored, op_id = video(model="veo-3.1-generate-001", previous_interaction_id="demo-int-0-abc")
    assert VideoLook.decode(op_id).edit is None and "EDIT" not in edit_ignored.metadata["label"]
    assert probe_mp4(edit_ignored.media[0].data) is not None
