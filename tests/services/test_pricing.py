"""Prices by option (botapp/pricing.py), capabilities (botapp/capabilities.py) and the service's validation
of frames, references, extension, variants: each bad input refused before anything is charged."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from botapp.capabilities import Capabilities, CapabilitiesError, normalize_params
from botapp.models import GenRequest, Transaction, UserBalance
from botapp.pricing import PricingError, quote, validate_rule
from botapp.services.exceptions import (
    CannotExtend,
    InvalidParameter,
    LastFrameNeedsFirst,
    PriceChanged,
    ReferencesExclusive,
    TooManyImages,
    TooManyReferences,
)
from botapp.services.generation import GenerationService

IMG = {"file_id": "f", "file_unique_id": "u", "mime_type": "image/jpeg", "size": 10}
VEO_RULE = {"per_second": {"720p": "2.375", "1080p": "2.375", "4k": "4.75"}, "audio_off": "0.67"}


def img(role: str, n: int = 0) -> dict:
    return {**IMG, "file_unique_id": f"u{role}{n}", "role": role}


# --- pricing -----------------------------------------------------------------------------------------
def test_video_is_priced_per_second_and_by_resolution():
    price = D("19")
    at_720p = {"resolution": "720p"}
    assert quote(price=price, rule=VEO_RULE, kind="video", params={**at_720p, "duration_seconds": 4}).total == D("9.50")
    assert quote(price=price, rule=VEO_RULE, kind="video", params={**at_720p, "duration_seconds": 8}).total == D("19")
    at_4k = {"duration_seconds": 8, "resolution": "4k"}
    assert quote(price=price, rule=VEO_RULE, kind="video", params=at_4k).total == D("38.00")
    silent = {"duration_seconds": 8, "resolution": "720p", "generate_audio": False}
    assert quote(price=price, rule=VEO_RULE, kind="video", params=silent).total == D("12.73")  # 12.73 half up


def test_image_multipliers_tables_and_variants():
    rule = {"resolution": {"2K": "1.5", "4K": "2.25"}, "resolution_prices": {"1K": "1.2"}}
    assert quote(price=D("1.5"), rule=rule, kind="image", params={"resolution": "1K"}).total == D("1.20")
    q = quote(price=D("1.5"), rule=rule, kind="image", params={"resolution": "4K"}, variants=3)
    assert (q.unit, q.total, q.share(1), q.share(5)) == (D("3.38"), D("10.14"), D("3.38"), D("10.14"))
    assert quote(price=D("0.001"), rule={}, kind="image", params={}).total == D("0.01"), "never free"


@pytest.mark.parametrize(
    "rule, message",
    [
        ("4K", "JSON object"),
        ({"per_seconds": 1}, "Unknown pricing keys"),
        ({"per_second": 1}, "video models only"),
        ({"resolution": {"8K": 2}}, "does not offer"),
        ({"resolution": {"4K": -1}}, "positive"),
        ({"resolution": {"4K": "abc"}}, "number"),
        ({"audio_off": True}, "number"),
    ],
)
def test_bad_pricing_rules_are_refused(rule, message):
    with pytest.raises(PricingError, match=message):
        validate_rule(rule, kind="image", resolutions=("1K", "4K"))


def test_a_per_second_table_must_cover_every_resolution():
    with pytest.raises(PricingError, match="no rate for: 4k"):
        validate_rule({"per_second": {"720p": 1}}, kind="video", resolutions=("720p", "4k"))
    assert validate_rule(VEO_RULE, kind="video", resolutions=("720p", "1080p", "4k")) == VEO_RULE


# --- capabilities -------------------------------------------------------------------------------------
def test_capabilities_are_strict_in_the_admin_and_lenient_in_the_bot():
    with pytest.raises(CapabilitiesError, match="Unknown capability keys: max_images"):
        Capabilities.parse({"max_images": 3}, strict=True)
    with pytest.raises(CapabilitiesError, match="max_variants"):
        Capabilities.parse({"max_variants": 9}, strict=True)
    with pytest.raises(CapabilitiesError, match="last_frame needs a first frame"):
        Capabilities.parse({"last_frame": True}, strict=True)
    assert Capabilities.parse({"max_variants": 9, "aspect_ratios": "16:9"}) == Capabilities()


def test_options_are_kept_together():
    caps = Capabilities.parse(
        {
            "durations": [4, 6, 8],
            "resolutions": ["720p", "1080p", "4k"],
            "resolution_durations": {"1080p": [8], "4k": [8]},
            "reference_durations": [8],
            "aspect_ratios": ["16:9", "9:16"],
            "audio": True,
        }
    )
    base = {"aspect_ratio": "16:9", "duration_seconds": 4, "resolution": "720p"}
    assert normalize_params(caps, {**base, "resolution": "4k"}, kind="video", changed="resolution") == {
        "aspect_ratio": "16:9",
        "duration_seconds": 8,
        "resolution": "4k",
        "generate_audio": True,
    }
    moved = normalize_params(caps, {**base, "resolution": "1080p"}, kind="video", changed="duration_seconds")
    assert (moved["duration_seconds"], moved["resolution"]) == (4, "720p"), "the duration picked wins"
    assert normalize_params(caps, base, kind="video", references=2)["duration_seconds"] == 8


# --- the service: every bad input refused before a charge ---------------------------------------------------
def create(user, model, **kw):
    kw.setdefault("prompt", "a fox")
    return GenerationService.create_request(user_id=user.pk, ai_model_id=model.pk, **kw)


@pytest.mark.parametrize(
    "kw, error",
    [
        ({"input_images": [img("reference", i) for i in range(4)]}, TooManyReferences),
        ({"input_images": [img("last")]}, LastFrameNeedsFirst),
        ({"input_images": [img("first"), img("first", 1)]}, TooManyImages),
        ({"input_images": [img("first"), img("reference")]}, ReferencesExclusive),
        ({"input_images": [img("image")]}, InvalidParameter),
        ({"params": {"resolution": "8k"}}, InvalidParameter),
        ({"params": {"duration_seconds": 4, "resolution": "4k"}}, InvalidParameter),
        ({"params": {"duration_seconds": 4}, "input_images": [img("reference")]}, InvalidParameter),
        ({"params": {"generate_audio": "no"}}, InvalidParameter),
        ({"variants": 2}, InvalidParameter),
        ({"params": {"extend_from": 999999}}, CannotExtend),
        ({"expected_price": D("18")}, PriceChanged),
    ],
)
def test_bad_video_input_is_refused_without_charge(make_user, veo, kw, error):
    user = make_user(balance=100)
    with pytest.raises(error):
        create(user, veo, **kw)
    assert GenRequest.objects.count() == 0 and UserBalance.objects.get(user=user).balance == D(100)


def test_extending_someone_elses_or_an_undelivered_video_is_refused(make_user, veo, nano):
    owner, other = make_user(balance=100), make_user(balance=100)
    source = create(owner, veo)
    GenRequest.objects.filter(pk=source.pk).update(
        status="succeeded", results=[{"kind": "video", "path": "generations/x.mp4"}]
    )
    with pytest.raises(CannotExtend):  # not delivered yet
        create(owner, veo, params={"extend_from": source.pk})
    GenRequest.objects.filter(pk=source.pk).update(delivered_at="2026-11-29T00:00Z")
    with pytest.raises(CannotExtend):  # not theirs
        create(other, veo, params={"extend_from": source.pk})
    with pytest.raises(InvalidParameter):  # an image model takes no video params' roles... nor extension
        create(owner, nano, input_images=[img("first")])
    extension = create(owner, veo, params={"extend_from": source.pk})
    assert extension.params["duration_seconds"] == 7 and extension.params["resolution"] == "720p"
    assert extension.price == D("16.63")  # 7 s × 2.375, half up


def test_variants_are_charged_as_the_unit_times_their_number(make_user, nano):
    user = make_user(balance=20)
    request = create(user, nano, params={"resolution": "2K"}, variants=4)
    assert (request.variants, request.price) == (4, D("9.00"))  # 1.5 × 1.5 × 4
    charge = Transaction.objects.get(gen_request=request, kind="charge")
    assert charge.amount == D("-9.00") or abs(charge.amount) == D("9.00")


def test_a_model_that_cannot_extend_refuses_an_extension(make_user, veo):
    user = make_user(balance=100)
    source = create(user, veo)
    GenRequest.objects.filter(pk=source.pk).update(
        status="succeeded", delivered_at="2026-11-29T00:00Z", results=[{"kind": "video", "path": "g/x.mp4"}]
    )
    veo.capabilities = {**veo.capabilities, "extension": False}
    veo.save()
    with pytest.raises(CannotExtend):
        create(user, veo, params={"extend_from": source.pk})
    assert GenRequest.objects.count() == 1
