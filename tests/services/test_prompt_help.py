"""The "Improve my prompt" service: where it runs, the hourly limit, the rewrite (the fake Google's
text mode through the real SDK, or the offline demo), and its price charged with the generation."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.cache import cache

from botapp.models import GenRequest, Transaction, UserBalance
from botapp.providers import SafetyBlocked
from botapp.services import prompt_help
from botapp.services.exceptions import InsufficientFunds, PriceChanged
from botapp.services.generation import GenerationService
from sandbox.google import FakeGoogleServer

D = Decimal


@pytest.fixture(scope="module")
def google():
    with FakeGoogleServer() as server:
        yield server


@pytest.fixture
def no_credentials(settings):
    settings.GOOGLE_API_KEY = settings.GOOGLE_VERTEX_API_KEY = settings.GOOGLE_CLOUD_PROJECT = ""
    settings.GOOGLE_GENAI_USE_VERTEXAI = False
    settings.GENERATION_PROVIDER_MODE = "auto"
    settings.GENERATION_ALLOW_DEMO = True
    return settings


@pytest.fixture
def fake_google(settings, google):
    google.reset()
    settings.GOOGLE_API_KEY = "test-gemini-key"
    settings.GOOGLE_VERTEX_API_KEY = ""
    settings.GOOGLE_CLOUD_PROJECT = ""
    settings.GOOGLE_GENAI_USE_VERTEXAI = False
    settings.GENERATION_PROVIDER_MODE = "google"
    settings.GOOGLE_GEMINI_BASE_URL = settings.GOOGLE_VERTEX_BASE_URL = google.base_url
    settings.PROMPT_IMPROVE_MODEL = "gemini-test-text"
    return google


# --- where it runs -------------------------------------------------------------------------------------------
def test_backend_without_credentials_is_the_demo(no_credentials):
    assert prompt_help.backend() == "demo"
    assert prompt_help.enabled()
    no_credentials.GENERATION_ALLOW_DEMO = False  # the real Telegram in production: no fake rewrites
    assert prompt_help.backend() is None and not prompt_help.enabled()
    no_credentials.GENERATION_ALLOW_DEMO = True
    no_credentials.GENERATION_PROVIDER_MODE = "google"
    assert prompt_help.backend() is None


def test_backend_follows_the_credentials(no_credentials):
    settings = no_credentials
    settings.GOOGLE_API_KEY = "k"
    assert prompt_help.backend() == "gemini"
    settings.GOOGLE_VERTEX_API_KEY = "v"
    assert prompt_help.backend() == "gemini"
    settings.GOOGLE_GENAI_USE_VERTEXAI = True
    assert prompt_help.backend() == "vertex"
    settings.GOOGLE_VERTEX_API_KEY = ""
    assert prompt_help.backend() == "gemini"  # the default backend has no credentials: the other one
    settings.GENERATION_PROVIDER_MODE = "demo"
    assert prompt_help.backend() == "demo"


def test_the_setting_switches_it_off(no_credentials):
    no_credentials.PROMPT_IMPROVE_ENABLED = False
    assert not prompt_help.enabled()


# --- the hourly limit -------------------------------------------------------------------------------------------
def test_hourly_limit_per_user(settings):
    cache.clear()
    settings.PROMPT_IMPROVE_PER_HOUR = 2
    assert [prompt_help.reserve(user_id=1) for _ in range(3)] == [True, True, False]
    assert prompt_help.reserve(user_id=2)  # another user has their own count
    settings.PROMPT_IMPROVE_PER_HOUR = 0  # no limit
    assert all(prompt_help.reserve(user_id=1) for _ in range(50))
    assert 1 <= prompt_help.minutes_to_next_window() <= 60


# --- the rewrite ------------------------------------------------------------------------------------------------
def test_demo_rewrite_is_deterministic_and_structured(no_credentials):
    first = prompt_help.improve(text="a cat on a roof.", kind="image", lang="en")
    again = prompt_help.improve(text="a cat on a roof.", kind="image", lang="en")
    assert first == again and first.is_demo
    assert first.text.startswith("Subject: a cat on a roof. Setting:")
    for part in ("Light:", "Camera:", "Style:"):
        assert part in first.text
    ru = prompt_help.improve(text="кот на крыше", kind="image", lang="ru").text
    assert ru.startswith("Объект: кот на крыше.") and "Камера:" in ru
    video = prompt_help.improve(text="кот на крыше", kind="video", lang="ru").text
    assert video.startswith("Subject: кот на крыше.") and "Camera:" in video and "Sound:" in video  # English


def test_demo_rewrite_honours_the_safety_marker_and_the_limit(no_credentials):
    with pytest.raises(SafetyBlocked):
        prompt_help.improve(text="a cat [[safety]]", kind="image", lang="en")
    short = prompt_help.improve(text="a cat on a roof", kind="image", lang="en", limit=40).text
    assert len(short) <= 40 and short.startswith("Subject: a cat on a roof")


def test_rewrite_through_google(fake_google):
    improved = prompt_help.improve(text="  a cat on a roof ", kind="video", lang="ru", photos=1, limit=900)
    assert improved.text == "Improved: a cat on a roof" and improved.backend == "gemini" and not improved.is_demo
    sent = fake_google.last("generateContent")
    assert sent.model == "gemini-test-text"
    instruction = sent.json["systemInstruction"]["parts"][0]["text"]
    assert instruction == prompt_help.instruction(kind="video", photos=1, limit=900)
    assert "video model" in instruction and "camera" in instruction and "in English" in instruction
    assert "starts from the user's image" in instruction and "at most 900 characters" in instruction
    assert sent.prompt == "a cat on a roof"


def test_rewrite_blocked_by_googles_filter(fake_google):
    with pytest.raises(SafetyBlocked):
        prompt_help.improve(text="a cat [[blocked]]", kind="image", lang="en")


def test_image_instruction_keeps_the_language_and_the_photos():
    text = prompt_help.instruction(kind="image", photos=2, limit=500)
    assert "image model" in text and "language of the user's description" in text
    assert "attached 2 photo(s)" in text and "English" not in text
    assert "attached" not in prompt_help.instruction(kind="image", photos=0, limit=500)


@pytest.mark.parametrize(
    ("answer", "limit", "expected"),
    [
        ('"a red fox in the snow"', 100, "a red fox in the snow"),
        ("```\na red fox\n```", 100, "a red fox"),
        ("«лиса в снегу»", 100, "лиса в снегу"),
        ("a red fox in the deep snow", 14, "a red fox in"),
        ("abcdefghijklmnop", 5, "abcde"),
    ],
)
def test_clean(answer, limit, expected):
    assert prompt_help.clean(answer, limit) == expected


# --- the price, charged with the generation ---------------------------------------------------------------------
def create(user, model, **kw):
    return GenerationService.create_request(
        user_id=user.pk, ai_model_id=model.pk, prompt="Improved: a fox", user_prompt="Improved: a fox", **kw
    )


@pytest.mark.django_db
def test_the_improvement_is_its_own_ledger_row_in_the_same_charge(settings, make_user, nano):
    settings.PROMPT_IMPROVE_PRICE = D("0.5")
    user = make_user(balance=10)
    request = create(user, nano, improve_price=D("0.5"), idempotency_key="confirm:x:1")
    fee = Transaction.objects.get(operation_key=prompt_help.charge_key(request.pk))
    assert fee.kind == Transaction.Kind.CHARGE and fee.amount == D("-0.5") and fee.gen_request_id == request.pk
    assert request.price == D("1.50")  # the generation's price is the variants' price only
    assert UserBalance.objects.get(user=user).total == D("8.00")
    # A second press of the same card charges nothing more.
    assert create(user, nano, improve_price=D("0.5"), idempotency_key="confirm:x:1").pk == request.pk
    assert UserBalance.objects.get(user=user).total == D("8.00")
    assert Transaction.objects.filter(kind=Transaction.Kind.CHARGE, gen_request=request).count() == 2


@pytest.mark.django_db
def test_a_failed_generation_refunds_its_price_not_the_rewrite(settings, make_user, nano):
    settings.PROMPT_IMPROVE_PRICE = D("0.5")
    user = make_user(balance=10)
    request = create(user, nano, improve_price=D("0.5"))
    assert GenerationService.fail(request_id=request.pk, error_code="test")
    assert UserBalance.objects.get(user=user).total == D("9.50")


@pytest.mark.django_db
def test_a_changed_improvement_price_is_refused(settings, make_user, nano):
    settings.PROMPT_IMPROVE_PRICE = D("1")
    user = make_user(balance=10)
    with pytest.raises(PriceChanged) as exc:
        create(user, nano, improve_price=D("0.5"))  # what the card showed
    assert exc.value.params == {"price": D("2.50")}
    assert not GenRequest.objects.exists() and UserBalance.objects.get(user=user).total == D(10)


@pytest.mark.django_db
def test_not_enough_for_the_generation_and_the_rewrite(settings, make_user, nano):
    settings.PROMPT_IMPROVE_PRICE = D("1")
    user = make_user(balance=2)  # 1.5 for the image, but not 2.5
    with pytest.raises(InsufficientFunds) as exc:
        create(user, nano, improve_price=D("1"))
    assert exc.value.required == D("2.50") and exc.value.shortfall == D("0.50")
    assert not GenRequest.objects.exists() and not Transaction.objects.filter(kind="charge").exists()


@pytest.mark.django_db
def test_free_or_unused_rewrite_adds_no_row(settings, make_user, nano):
    settings.PROMPT_IMPROVE_PRICE = D("0")
    user = make_user(balance=10)
    free = create(user, nano, improve_price=D("0"))
    settings.PROMPT_IMPROVE_PRICE = D("3")
    own = create(user, nano)  # the user's own text: no improve_price
    for request in (free, own):
        assert not Transaction.objects.filter(operation_key=prompt_help.charge_key(request.pk)).exists()
    assert UserBalance.objects.get(user=user).total == D("7.00")
