"""Prompt styles: the template check, the final prompt, the cached catalogue, and the check at Generate."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from botapp.models import GenRequest, PromptStyle, Transaction, UserBalance
from botapp.services import styles
from botapp.services.exceptions import PromptTooLong
from botapp.services.generation import GenerationService
from botapp.services.styles import StyledPromptTooLong, StyleInfo, StyleUnavailable

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    styles.clear_cache()
    yield
    styles.clear_cache()


def make_style(**kw) -> PromptStyle:
    kw.setdefault("name", "Акварель")
    kw.setdefault("name_en", "Watercolour")
    kw.setdefault("emoji", "🎨")
    kw.setdefault("prompt_template", "{prompt}, watercolour painting, soft edges")
    return PromptStyle.objects.create(**kw)


# --- templates ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "template",
    [
        "{prompt}",
        "{prompt}, watercolour",
        "Cinematic still of {prompt}. 35 mm film, grain.",
        "A (kid's) {prompt}: 100%",
    ],
)
def test_valid_templates(template):
    styles.validate_template(template)


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("watercolour painting", "must contain {prompt}"),
        ("{prompt} and again {prompt}", "only once"),
        ("{prompt} in the style of {style}", "Only {prompt} may be in braces"),
        ("{prompt} {0}", "Only {prompt} may be in braces"),
        ("{prompt}, {{literal}}", "Only {prompt} may be in braces"),
        ("{prompt} }", "Only {prompt} may be in braces"),
        ("{ prompt }", "must contain {prompt}"),
        ("{prompt}" + "x" * (styles.MAX_TEMPLATE_OVERHEAD + 1), "adds"),
    ],
)
def test_invalid_templates_are_refused(template, why):
    with pytest.raises(ValidationError) as exc:
        styles.validate_template(template)
    assert why in " ".join(exc.value.messages)


def test_the_template_is_filled_by_replace_not_format():
    # Braces in the user's text (or anything str.format would read) go through as they are.
    assert (
        styles.apply_template("{prompt}, watercolour", "  a {cat} with {0} %s  ") == "a {cat} with {0} %s, watercolour"
    )


def test_final_prompt_without_a_style_is_the_description():
    assert styles.final_prompt(text="  a fox ", style=None, limit=10) == "a fox"


def test_final_prompt_too_long_with_the_style():
    style = StyleInfo.from_model(make_style(prompt_template="{prompt}, oil painting"))  # adds 14 characters
    assert styles.final_prompt(text="x" * 86, style=style, limit=100) == "x" * 86 + ", oil painting"
    with pytest.raises(StyledPromptTooLong) as exc:
        styles.final_prompt(text="x" * 87, style=style, limit=100, lang="en")
    assert isinstance(exc.value, PromptTooLong)  # the generic handling of a too long prompt applies too
    assert exc.value.params == {"length": 101, "limit": 100, "style": "🎨 Watercolour"}


def test_label_in_the_users_language():
    info = StyleInfo.from_model(make_style(name_en=""))
    assert info.label("ru") == "🎨 Акварель"
    assert info.label("en") == "🎨 Акварель"  # no English name: the Russian one
    assert StyleInfo.from_model(make_style()).label("en") == "🎨 Watercolour"


# --- the catalogue -----------------------------------------------------------------------------------------
def test_active_styles_by_kind_and_order():
    both = make_style(name="both", sort_order=20)
    image = make_style(name="image", applies_to="image", sort_order=10)
    video = make_style(name="video", applies_to="video", sort_order=5)
    make_style(name="off", is_active=False)
    assert [s.id for s in styles.active_styles("image")] == [image.pk, both.pk]
    assert [s.id for s in styles.active_styles("video")] == [video.pk, both.pk]
    assert styles.find_style(video.pk, "image") is None
    assert styles.find_style(both.pk, "video").template == both.prompt_template


def test_the_catalogue_is_cached_for_a_few_seconds(django_assert_num_queries):
    make_style()
    styles.active_styles("image")
    with django_assert_num_queries(0):
        styles.active_styles("image")
        styles.active_styles("video")
    styles.clear_cache()
    with django_assert_num_queries(1):
        styles.active_styles("image")


# --- the check at Generate ---------------------------------------------------------------------------------
def test_check_active():
    style = make_style(applies_to="image")
    assert styles.check_active(style_id=style.pk, kind="image") == style
    with pytest.raises(StyleUnavailable):
        styles.check_active(style_id=style.pk, kind="video")
    style.is_active = False
    style.save()
    with pytest.raises(StyleUnavailable):
        styles.check_active(style_id=style.pk, kind="image")
    with pytest.raises(StyleUnavailable):
        styles.check_active(style_id=999_999, kind="image")


def test_create_request_with_a_style_stores_both_prompts(make_user, nano):
    user = make_user(balance=10)
    style = make_style()
    final = styles.apply_template(style.prompt_template, "a fox")
    request = GenerationService.create_request(
        user_id=user.pk, ai_model_id=nano.pk, prompt=final, user_prompt="a fox", style_id=style.pk
    )
    assert request.prompt == "a fox, watercolour painting, soft edges"
    assert request.user_prompt == "a fox" and request.style_id == style.pk


def test_a_style_deactivated_while_choosing_is_refused_before_any_charge(make_user, nano):
    user = make_user(balance=10)
    style = make_style()
    styles.active_styles("image")  # the bot saw it active
    PromptStyle.objects.filter(pk=style.pk).update(is_active=False)
    with pytest.raises(StyleUnavailable):
        GenerationService.create_request(
            user_id=user.pk, ai_model_id=nano.pk, prompt="a fox, watercolour", user_prompt="a fox", style_id=style.pk
        )
    assert not GenRequest.objects.exists()
    assert not Transaction.objects.filter(kind=Transaction.Kind.CHARGE).exists()
    assert UserBalance.objects.get(user=user).total == Decimal(10)


def test_a_final_prompt_over_the_limit_is_refused_before_any_charge(make_user, nano):
    user = make_user(balance=10)
    style = make_style()
    limit = nano.caps.max_prompt_length
    final = styles.apply_template(style.prompt_template, "x" * limit)
    with pytest.raises(PromptTooLong) as exc:
        GenerationService.create_request(
            user_id=user.pk, ai_model_id=nano.pk, prompt=final, user_prompt="x" * limit, style_id=style.pk
        )
    assert exc.value.params == {"length": len(final), "limit": limit}
    assert not GenRequest.objects.exists()
