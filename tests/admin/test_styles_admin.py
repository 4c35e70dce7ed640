"""Prompt styles in the admin: templates checked on save, the example image (JPEG/PNG/WebP up to 5 MB)
shown in the list and streamed to staff only, activate/deactivate, the sidebar; and the seed command."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from PIL import Image

from botapp.admin.navigation import sidebar
from botapp.management.commands.seed_styles import PRESETS
from botapp.models import PromptStyle
from tests.admin.test_admin import post_action, url

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)


def picture(fmt: str = "PNG", size=(40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(buffer, format=fmt)
    return buffer.getvalue()


def add_style(client, **fields):
    data = {
        "emoji": "🎨",
        "name": "Акварель",
        "name_en": "Watercolour",
        "applies_to": "",
        "prompt_template": "{prompt}, watercolour",
        "is_active": "on",
        "sort_order": "10",
        **fields,
    }
    return client.post(url(PromptStyle, "add"), data)


def test_a_valid_style_is_saved_and_listed_with_its_example(admin_client):
    image = SimpleUploadedFile("fox.png", picture(), content_type="image/png")
    response = add_style(admin_client, example_image=image)
    assert response.status_code == 302, response.content[:3000]
    style = PromptStyle.objects.get()
    assert style.prompt_template == "{prompt}, watercolour" and style.example_image
    example_url = url(PromptStyle, "example", style.pk)
    listing = admin_client.get(url(PromptStyle, "changelist")).content.decode()
    assert "Акварель" in listing and f'src="{example_url}"' in listing
    served = admin_client.get(example_url)
    assert served.status_code == 200 and served["Content-Type"] == "image/png"
    assert b"".join(served.streaming_content) == picture()
    assert f'src="{example_url}"' in admin_client.get(url(PromptStyle, "change", style.pk)).content.decode()


@pytest.mark.parametrize(
    "template",
    ["a watercolour painting", "{prompt} {prompt}", "{prompt} in {style}", "{prompt} {0}", "{prompt}, {{x}}"],
)
def test_a_template_the_bot_cannot_fill_is_refused(admin_client, template):
    response = add_style(admin_client, prompt_template=template)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["prompt_template"]
    assert not PromptStyle.objects.exists()


def test_an_example_that_is_not_a_photo_or_too_big_is_refused(admin_client, monkeypatch):
    gif = SimpleUploadedFile("a.gif", picture("GIF"), content_type="image/gif")
    response = add_style(admin_client, example_image=gif)
    assert response.status_code == 200 and response.context["adminform"].form.errors["example_image"]
    text = SimpleUploadedFile("a.png", b"not an image", content_type="image/png")
    response = add_style(admin_client, example_image=text)
    assert response.status_code == 200 and response.context["adminform"].form.errors["example_image"]
    monkeypatch.setattr("botapp.admin.styles.MAX_EXAMPLE_BYTES", 100)
    big = SimpleUploadedFile("big.png", picture(size=(200, 200)), content_type="image/png")
    response = add_style(admin_client, example_image=big)
    assert response.status_code == 200 and response.context["adminform"].form.errors["example_image"]
    assert not PromptStyle.objects.exists()


def test_the_example_is_for_staff_only(client, admin_client):
    add_style(admin_client, example_image=SimpleUploadedFile("fox.png", picture(), content_type="image/png"))
    style = PromptStyle.objects.get()
    example_url = url(PromptStyle, "example", style.pk)
    assert client.get(example_url).status_code == 302  # anonymous: to the login page
    clerk = User.objects.create_user("clerk", password="pw", is_staff=True)  # staff, no permission on styles
    client.force_login(clerk)
    assert client.get(example_url).status_code == 403
    style.example_image = ""
    style.save()
    assert admin_client.get(example_url).status_code == 404


def test_deactivate_and_sidebar(admin_client, rf):
    add_style(admin_client)
    style = PromptStyle.objects.get()
    post_action(admin_client, PromptStyle, "deactivate", [style.pk])
    assert not PromptStyle.objects.get().is_active
    request = rf.get("/admin/")
    request.user = User.objects.get(username="admin")
    items = [item for group in sidebar(request) for item in group["items"]]
    assert any(item["link"] == url(PromptStyle, "changelist") for item in items)


# --- the seed command -------------------------------------------------------------------------------------------
def test_seed_styles_is_idempotent_and_leaves_the_operators_edits():
    call_command("seed_styles", stdout=io.StringIO())
    assert PromptStyle.objects.count() == len(PRESETS)
    edited = PromptStyle.objects.get(name_en="Watercolour")
    edited.prompt_template = "{prompt}, my own watercolour"
    edited.is_active = False
    edited.save()
    out = io.StringIO()
    call_command("seed_styles", stdout=out)
    assert "0 added" in out.getvalue()
    assert PromptStyle.objects.count() == len(PRESETS)
    edited.refresh_from_db()
    assert edited.prompt_template == "{prompt}, my own watercolour" and not edited.is_active
    assert {s.applies_to for s in PromptStyle.objects.all()} == {"", "image", "video"}
