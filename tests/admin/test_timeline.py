"""The user page's timeline (botapp.selectors.support.user_timeline, rendered by botapp.admin.support) with
real payments, generations, ledger rows and support messages; the generation results stored by the
worker and streamed back by the staff-only result view; the generation page's readable results."""

from __future__ import annotations

import io
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from botapp.engine import results as engine_results
from botapp.models import GenRequest, Payment, SupportMessage, TgUser, TopUpPackage, Transaction
from botapp.providers.base import MediaItem, ProviderResult
from botapp.selectors.support import user_timeline
from botapp.services.generation import GenerationService
from botapp.services.payments import PaymentService
from tests.admin.test_admin import url

pytestmark = pytest.mark.django_db

VIDEO_BYTES = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40  # not a real MP4: only served back


def png(size=(640, 480)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 40, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


def succeed(gen: GenRequest, *items: MediaItem) -> GenRequest:
    """As the worker finishes a request: the files saved to storage, then succeeded."""
    GenerationService.mark_running(request_id=gen.pk)
    results, _ = engine_results.store_media(gen, ProviderResult(media=list(items)))
    GenerationService.mark_succeeded(request_id=gen.pk, results=results)
    gen.refresh_from_db()
    return gen


@pytest.fixture
def history(make_user, nano, veo, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    user = make_user(balance=50, username="timeline_user")
    package = TopUpPackage.objects.filter(is_active=True).order_by("tokens").first()
    payment = PaymentService.create_invoice(user_id=user.pk, package_id=package.pk)
    PaymentService.complete(
        invoice_payload=payment.invoice_payload,
        provider_charge_id="tl-charge-1",
        total_amount=int(payment.amount),
        currency=payment.currency,
    )
    image = succeed(
        GenerationService.create_request(user_id=user.pk, ai_model_id=nano.pk, prompt="a red fox in deep snow " * 10),
        MediaItem(mime_type="image/png", data=png()),
    )
    video = succeed(
        GenerationService.create_request(user_id=user.pk, ai_model_id=veo.pk, prompt="waves at night"),
        MediaItem(mime_type="video/mp4", data=VIDEO_BYTES, width=1280, height=720, duration=8.0),
    )
    failed = GenerationService.create_request(user_id=user.pk, ai_model_id=nano.pk, prompt="a broken one")
    GenerationService.mark_running(request_id=failed.pk)
    GenerationService.fail(request_id=failed.pk, error_code="provider_error")
    message = SupportMessage.objects.create(user=user, text="Your tokens are back", operator_name="alice")
    payment.refresh_from_db()
    return {"user": user, "payment": payment, "image": image, "video": video, "failed": failed, "message": message}


# --- the selector ---------------------------------------------------------------------------------------
def test_the_timeline_merges_every_source_newest_first(history):
    user = history["user"]
    entries = user_timeline(user_id=user.pk, limit=50)
    assert [e.at for e in entries] == sorted((e.at for e in entries), reverse=True)
    seen = {(e.source, e.pk) for e in entries}
    assert ("payment", history["payment"].pk) in seen
    for name in ("image", "video", "failed"):
        assert ("generation", history[name].pk) in seen, name
    assert ("message", history["message"].pk) in seen
    ledger = set(Transaction.objects.filter(user=user).values_list("pk", flat=True))
    assert {pk for source, pk in seen if source == "ledger"} == ledger, "every ledger row (fund, deposit, charges...)"
    assert len(entries) == 1 + 3 + 1 + len(ledger)

    by_key = {(e.source, e.pk): e for e in entries}
    payment = by_key[("payment", history["payment"].pk)]
    assert payment.amount == history["payment"].tokens + history["payment"].bonus_tokens > 0
    assert payment.status == Payment.Status.SUCCEEDED
    image = by_key[("generation", history["image"].pk)]
    assert image.amount == -Decimal("1.50") and image.model and image.status == "succeeded"
    assert image.text.endswith("…") and len(image.text) <= 120, "the prompt is shortened"
    assert [(f.index, f.is_image, f.mime_type) for f in image.files] == [(0, True, "image/png")]
    video = by_key[("generation", history["video"].pk)]
    assert [(f.is_video, f.duration) for f in video.files] == [(True, 8.0)]
    failed = by_key[("generation", history["failed"].pk)]
    assert (failed.error, failed.refunded) == ("provider_error", True)
    charges = [e for e in entries if e.source == "ledger" and e.kind == Transaction.Kind.CHARGE]
    assert all(e.amount < 0 and e.related[0][0] == "generation" for e in charges)


def test_the_timeline_keeps_the_newest_within_the_limit(history):
    everything = user_timeline(user_id=history["user"].pk, limit=100)
    assert user_timeline(user_id=history["user"].pk, limit=3) == everything[:3]
    assert user_timeline(user_id=history["user"].pk, limit=5, sources=["payment"])[0].source == "payment"


# --- the user page ----------------------------------------------------------------------------------------
def test_the_user_page_shows_the_timeline_with_links_and_media(admin_client, history):
    user, image, video = history["user"], history["image"], history["video"]
    response = admin_client.get(url(TgUser, "change", user.pk))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="timeline"' in html
    for model, obj in (
        (Payment, history["payment"]),
        (GenRequest, image),
        (GenRequest, history["failed"]),
        (SupportMessage, history["message"]),
    ):
        assert f'href="{url(model, "change", obj.pk)}"' in html, model
    row = Transaction.objects.filter(user=user).first()
    assert f'href="{url(Transaction, "change", row.pk)}"' in html
    assert "+" + str(history["payment"].tokens) in html
    assert "-1.50" in html
    assert "provider_error" in html and "Your tokens are back" in html

    image_url = url(GenRequest, "result", image.pk, 0)
    thumbs = re.findall(r'<img src="([^"]+)" loading="lazy"', html)
    assert f"{image_url}?thumb=1" in thumbs
    assert f'<a href="{image_url}"' in html, "the thumbnail links to the full image"
    video_url = url(GenRequest, "result", video.pk, 0)
    assert f'<video controls preload="metadata" src="{video_url}"' in html


def test_the_result_files_are_served_to_staff(admin_client, history):
    image, video = history["image"], history["video"]
    stored = image.results[0]
    assert stored["path"].startswith("generations/")

    response = admin_client.get(url(GenRequest, "result", image.pk, 0))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == png()

    thumb = admin_client.get(url(GenRequest, "result", image.pk, 0), {"thumb": "1"})
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/webp"
    with Image.open(io.BytesIO(thumb.content)) as small:
        assert max(small.size) <= 320 and small.size[0] > small.size[1]

    response = admin_client.get(url(GenRequest, "result", video.pk, 0))
    assert response["Content-Type"] == "video/mp4" and response["Accept-Ranges"] == "bytes"
    assert b"".join(response.streaming_content) == VIDEO_BYTES
    part = admin_client.get(url(GenRequest, "result", video.pk, 0), HTTP_RANGE="bytes=100-199")
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 100-199/{len(VIDEO_BYTES)}"
    assert b"".join(part.streaming_content) == VIDEO_BYTES[100:200]
    tail = admin_client.get(url(GenRequest, "result", video.pk, 0), HTTP_RANGE="bytes=-10")
    assert b"".join(tail.streaming_content) == VIDEO_BYTES[-10:]
    beyond = admin_client.get(url(GenRequest, "result", video.pk, 0), HTTP_RANGE=f"bytes={len(VIDEO_BYTES)}-")
    assert beyond.status_code == 416

    assert admin_client.get(url(GenRequest, "result", image.pk, 5)).status_code == 404
    assert admin_client.get(url(GenRequest, "result", history["failed"].pk, 0)).status_code == 404
    assert admin_client.get(url(GenRequest, "result", 987654, 0)).status_code == 404


def test_a_file_missing_from_storage_is_a_404(admin_client, history, tmp_path):
    image = history["image"]
    (tmp_path / image.results[0]["path"]).unlink()
    assert admin_client.get(url(GenRequest, "result", image.pk, 0)).status_code == 404


def test_a_stored_type_the_browser_could_run_is_downloaded_not_rendered(admin_client, history):
    gen = history["image"]
    path = default_storage.save("generations/test/page.html", ContentFile(b"<script>alert(1)</script>"))
    GenRequest.objects.filter(pk=gen.pk).update(results=[{"kind": "image", "path": path, "mime_type": "text/html"}])
    response = admin_client.get(url(GenRequest, "result", gen.pk, 0))
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment")
    assert response["Content-Security-Policy"] == "sandbox"


def test_the_result_view_refuses_whoever_may_not_view_generations(client, history, django_user_model):
    file_url = url(GenRequest, "result", history["image"].pk, 0)
    response = client.get(file_url)
    assert response.status_code == 302 and "/login/" in response["Location"], "anonymous"

    member = django_user_model.objects.create_user("member", password="x", is_staff=False)
    member.user_permissions.add(Permission.objects.get(codename="view_genrequest"))
    client.force_login(member)
    response = client.get(file_url)
    assert response.status_code == 302 and "/login/" in response["Location"], "not staff"

    staff = django_user_model.objects.create_user("clerk", password="x", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_tguser"))
    client.force_login(staff)
    assert client.get(file_url).status_code == 403, "staff without the permission on generations"

    staff.user_permissions.add(Permission.objects.get(codename="view_genrequest"))
    staff = django_user_model.objects.get(pk=staff.pk)  # permissions are cached on the instance
    client.force_login(staff)
    response = client.get(file_url)
    assert response.status_code == 200 and b"".join(response.streaming_content) == png()


def test_the_timeline_shows_only_what_the_operator_may_view(client, history, django_user_model):
    staff = django_user_model.objects.create_user("clerk", password="x", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_tguser"))
    client.force_login(staff)
    html = client.get(url(TgUser, "change", history["user"].pk)).content.decode()
    assert 'id="timeline"' in html
    assert "tl-charge-1" not in html and "<video" not in html and "Your tokens are back" not in html


# --- the generation page -----------------------------------------------------------------------------------
def test_the_generation_page_shows_previews_and_a_readable_table(admin_client, history):
    image, video = history["image"], history["video"]
    html = admin_client.get(url(GenRequest, "change", image.pk)).content.decode()
    image_url = url(GenRequest, "result", image.pk, 0)
    assert f'<img src="{image_url}?thumb=1" loading="lazy"' in html
    assert "640×480" in html and "image/png" in html
    assert "<details" in html and "Raw JSON" in html, "the stored JSON, collapsed"
    assert "aspect_ratio" in html, "the parameters as a table"

    html = admin_client.get(url(GenRequest, "change", video.pk)).content.decode()
    assert f'<video controls preload="metadata" src="{url(GenRequest, "result", video.pk, 0)}"' in html
    assert "1280×720" in html and "8.0 s" in html
