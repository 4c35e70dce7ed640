"""Nano Banana 2 / Pro options with the REAL google-genai SDK against the fake Google: the exact
`generationConfig.imageConfig` and parts Google gets for 4K, extreme aspect ratios and 14 photos, and
Google's refusals of what a model lacks as clean provider errors."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from botapp.providers import GoogleConfig, InputImage, InvalidInput, NanoBananaProvider, ProviderRequest

NB2 = "gemini-3.1-flash-image"
PRO = "gemini-3-pro-image"


def png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(params=["gemini", "vertex"])
def provider(request, server) -> NanoBananaProvider:
    return NanoBananaProvider(
        GoogleConfig(
            api_key="k",
            vertex_api_key="k",
            use_vertex=request.param == "vertex",
            gemini_base_url=server.base_url,
            vertex_base_url=server.base_url,
        )
    )


def image_req(model: str = NB2, **kw) -> ProviderRequest:
    return ProviderRequest(provider_model_id=model, kind="image", prompt=kw.pop("prompt", "a lighthouse"), **kw)


def picture(result) -> Image.Image:
    return Image.open(io.BytesIO(result.media[0].data))


def test_4k_square(server, provider):
    result = provider.submit(image_req(params={"aspect_ratio": "1:1", "resolution": "4K"})).result
    sent = server.last("generateContent")
    assert sent.generation_config == {
        "responseModalities": ["IMAGE"],
        "imageConfig": {"aspectRatio": "1:1", "imageSize": "4K"},
    }
    image = picture(result)
    assert image.size == (256, 256) and image.text["fake-size"] == "4K"  # the fake's 4K: 4 x its 1K side


def test_resolution_alone_and_in_lower_case(server, provider):
    result = provider.submit(image_req(params={"resolution": "2k"})).result
    assert server.last("generateContent").generation_config["imageConfig"] == {"imageSize": "2K"}
    assert picture(result).size == (128, 128)
    provider.submit(image_req(params={}))
    assert "imageConfig" not in server.last("generateContent").generation_config


@pytest.mark.parametrize(("ratio", "size"), [("1:8", (8, 64)), ("8:1", (64, 8)), ("1:4", (16, 64)), ("4:1", (64, 16))])
def test_extreme_aspect_ratios(server, provider, ratio, size):
    result = provider.submit(image_req(params={"aspect_ratio": ratio})).result
    assert server.last("generateContent").generation_config["imageConfig"] == {"aspectRatio": ratio}
    assert picture(result).size == size


def test_fourteen_photos_in_order(server, provider):
    photos = [png((i * 18, 255 - i * 18, 7)) for i in range(14)]
    result = provider.submit(image_req(prompt="combine them", input_images=[InputImage(p) for p in photos])).result
    sent = server.last("generateContent")
    parts = sent.json["contents"][0]["parts"]
    assert parts[0] == {"text": "combine them"} and len(parts) == 15
    assert [data for _, data in sent.input_images] == photos
    assert {mime for mime, _ in sent.input_images} == {"image/png"}
    assert picture(result).text["fake-inputs"] == "14"


def test_fifteen_photos_are_refused_before_google(server, provider):
    with pytest.raises(InvalidInput) as info:
        provider.submit(image_req(input_images=[InputImage(png((1, 2, 3)))] * 15))
    assert info.value.code == "too_many_images"
    assert server.requests == []


REFUSALS = [
    (NB2, {"resolution": "8K"}, "Unsupported image size: 8K"),
    (PRO, {"resolution": "512"}, "Unsupported image size: 512"),
    (PRO, {"aspect_ratio": "1:8"}, "Unsupported aspect ratio: 1:8"),
    ("gemini-2.5-flash-image", {"aspect_ratio": "4:1"}, "Unsupported aspect ratio: 4:1"),
    (NB2, {"aspect_ratio": "7:5"}, "Unsupported aspect ratio: 7:5"),
]


@pytest.mark.parametrize(("model", "params", "message"), REFUSALS)
def test_google_refuses_what_the_model_lacks(server, provider, model, params, message):
    with pytest.raises(InvalidInput, match=message) as info:
        provider.submit(image_req(model, params=params))
    assert info.value.details["status"] == "INVALID_ARGUMENT"
    assert len(server.requests_for("generateContent", model)) == 1


def test_what_a_model_has_is_accepted(server, provider):
    assert provider.submit(image_req(NB2, params={"resolution": "512", "aspect_ratio": "8:1"})).is_done
    assert provider.submit(image_req(PRO, params={"resolution": "4K", "aspect_ratio": "21:9"})).is_done


def test_a_test_may_set_a_models_aspect_ratios(server, provider):
    server.set_model_aspect_ratios(NB2, ["1:1"])
    with pytest.raises(InvalidInput, match="16:9"):
        provider.submit(image_req(params={"aspect_ratio": "16:9"}))
    server.set_model_aspect_ratios(NB2, None)
    assert provider.submit(image_req(params={"aspect_ratio": "16:9"})).is_done
