"""The models' lifecycle in the admin (botapp/admin/catalogue.py, botapp/admin/dashboard.py): a badge per
status, the shutdown date and the successor in the list; the form refuses a successor that is the model
itself, of the other kind or that makes a cycle, and an active retired model (in the list too), and checks
the cost by resolution; "Check with Google" lists what the key sees and flags the catalogue's missing ids,
errors shown without the key; the dashboard's banner names the models near or past their shutdown."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from botapp.models import AIModel
from tests.admin.test_admin import model_form_data
from tests.fake_google import _fresh_fake_google, server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db

Lifecycle = AIModel.Lifecycle


def url(view: str, *args) -> str:
    return reverse(f"admin:botapp_aimodel_{view}", args=args)


def form_data(model: AIModel, **changes) -> dict:
    """The change form as the admin posts it (tests.admin.test_admin.model_form_data), with the lifecycle."""
    lifecycle = {
        "costs_usd": model.costs_usd,
        "status": model.status,
        "deprecation_date": model.deprecation_date.isoformat() if model.deprecation_date else "",
        "shutdown_date": model.shutdown_date.isoformat() if model.shutdown_date else "",
        "successor": str(model.successor_id or ""),
    }
    return model_form_data(model, **{**lifecycle, **changes})


def errors_of(response) -> dict:
    assert response.status_code == 200, response.status_code
    return response.context["adminform"].form.errors


@pytest.fixture
def lite(db):
    return AIModel.objects.get(slug="nano-banana-2-lite")


@pytest.fixture
def old(nano):
    return AIModel.objects.get(slug="nano-banana")  # Nano Banana 2: retired, its successor Nano Banana 2.1


# --- the list ----------------------------------------------------------------------------------------------------
def table(html: str) -> list[dict[str, str]]:
    """The list's rows: {column label: the cell's text}, with "bg" the cell's first colour class."""
    rows = []
    for row in html.split("<tr")[1:]:
        cells = {}
        for label, cell in re.findall(r'data-label="([^"]+)"[^>]*>(.*?)</t[dh]>', row, flags=re.S):
            colour = re.search(r"\b(bg-[a-z]+-100)\b", cell)
            cells[label] = " ".join(re.sub(r"<[^>]+>", " ", cell).split())
            if colour:
                cells[label + ":bg"] = colour.group(1)
        if cells.get("slug"):
            rows.append(cells)
    return rows


def test_the_list_shows_a_badge_per_status_the_shutdown_date_and_the_successor(admin_client, nano, lite, veo, old):
    AIModel.objects.filter(pk=lite.pk).update(status=Lifecycle.PREVIEW)
    AIModel.objects.filter(pk=veo.pk).update(status=Lifecycle.DEPRECATED, shutdown_date="2027-01-20")
    response = admin_client.get(url("changelist"))
    assert response.status_code == 200
    rows = {row["slug"]: row for row in table(response.content.decode())}
    badge = {slug: (row["Lifecycle"], row["Lifecycle:bg"]) for slug, row in rows.items()}
    assert badge["nano-banana-2-lite"] == ("Preview", "bg-blue-100")
    assert badge["nano-banana-2-1"] == ("GA", "bg-green-100")
    assert badge["veo-3-1-fast"] == ("Deprecated", "bg-orange-100")
    assert badge["nano-banana"] == ("Retired", "bg-red-100")
    assert rows["veo-3-1-fast"]["shutdown date"] == "Jan. 20, 2027"
    assert rows["nano-banana"]["successor"] == "🍌 Nano Banana 2.1"
    assert rows["nano-banana-2-1"]["successor"] == "-"
    # Filtered by status.
    filtered = admin_client.get(url("changelist"), {"status__exact": "retired"})
    assert {m.slug for m in filtered.context["cl"].result_list} == {"nano-banana", "imagen"}


# --- the form ----------------------------------------------------------------------------------------------------
def test_the_lifecycle_fields_are_saved(admin_client, nano, lite):
    response = admin_client.post(
        url("change", lite.pk),
        form_data(
            lite,
            status="deprecated",
            deprecation_date="2026-12-01",
            shutdown_date="2027-03-01",
            successor=str(nano.pk),
            costs_usd={"1K": "0.04"},
        ),
    )
    assert response.status_code == 302, errors_of(response)
    lite.refresh_from_db()
    assert (lite.status, str(lite.shutdown_date), lite.successor_id) == ("deprecated", "2027-03-01", nano.pk)
    assert lite.costs_usd == {"1K": "0.04"} and lite.unit_cost_usd({"resolution": "1K"}) == Decimal("0.04")


@pytest.mark.parametrize(
    "make_changes, field, message",
    [
        (lambda m, o: {"successor": str(m["nano"].pk)}, "successor", "its own successor"),
        (lambda m, o: {"successor": str(m["veo"].pk)}, "successor", "same kind"),
        (lambda m, o: {"successor": str(m["lite"].pk)}, "successor", "makes a cycle"),  # lite -> nano -> lite
        (lambda m, o: {"successor": str(m["old"].pk)}, "successor", "is retired"),
        (lambda m, o: {"status": "retired"}, "is_active", "retired model cannot be active"),
        (lambda m, o: {"costs_usd": {"8K": "0.2"}}, "costs_usd", "not a resolution of this model"),
        (lambda m, o: {"costs_usd": {"4K": "-1"}}, "costs_usd", "zero or more"),
        (lambda m, o: {"costs_usd": {"4K": "cheap"}}, "costs_usd", "zero or more"),
        (lambda m, o: {"costs_usd": ["0.1"]}, "costs_usd", "JSON object"),
    ],
)
def test_the_form_refuses_a_bad_successor_an_active_retired_model_and_bad_costs(
    admin_client, nano, lite, veo, old, make_changes, field, message
):
    AIModel.objects.filter(pk=lite.pk).update(successor=nano)
    AIModel.objects.filter(pk=old.pk).update(successor=None)  # retired, pointing nowhere
    models = {"nano": nano, "lite": lite, "veo": veo, "old": old}
    before = AIModel.objects.filter(pk=nano.pk).values().get()
    response = admin_client.post(url("change", nano.pk), form_data(nano, **make_changes(models, None)))
    errors = errors_of(response)
    assert message in " ".join(errors.get(field, [])), errors
    assert AIModel.objects.filter(pk=nano.pk).values().get() == before


def test_a_longer_cycle_is_refused_too(admin_client, nano, lite, old):
    # old (Nano Banana 2) -> nano; lite -> old; then nano -> lite closes nano -> lite -> old -> nano.
    AIModel.objects.filter(pk=lite.pk).update(successor=old)
    response = admin_client.post(url("change", nano.pk), form_data(nano, successor=str(lite.pk)))
    assert "makes a cycle" in " ".join(errors_of(response)["successor"])


def test_the_list_refuses_to_tick_a_retired_model_active(admin_client, old):
    models = list(AIModel.objects.order_by("kind", "sort_order", "id"))
    data = {"form-TOTAL_FORMS": str(len(models)), "form-INITIAL_FORMS": str(len(models)), "_save": "Save"}
    for i, m in enumerate(models):
        data.update({f"form-{i}-id": str(m.pk), f"form-{i}-price": str(m.price), f"form-{i}-sort_order": "1"})
        if m.is_active or m.pk == old.pk:
            data[f"form-{i}-is_active"] = "on"
    response = admin_client.post(url("changelist"), data)
    assert response.status_code == 200
    assert "retired model cannot be active" in response.content.decode()
    assert not AIModel.objects.get(pk=old.pk).is_active


def test_bringing_a_switched_model_back_clears_its_switch(admin_client, old):
    AIModel.objects.filter(pk=old.pk).update(switched_at=timezone.now())
    old.refresh_from_db()
    response = admin_client.post(url("change", old.pk), form_data(old, status="ga", is_active="on"))
    assert response.status_code == 302, errors_of(response)
    old.refresh_from_db()
    assert old.is_active and old.status == "ga" and old.switched_at is None


# --- Check with Google ---------------------------------------------------------------------------------------------
@pytest.fixture
def google_at(settings, server):  # noqa: F811 (the fixture)
    from botapp.providers.google.client import clear_client_cache

    settings.GOOGLE_API_KEY = settings.GOOGLE_VERTEX_API_KEY = "test-key"
    settings.GOOGLE_GEMINI_BASE_URL = settings.GOOGLE_VERTEX_BASE_URL = server.base_url
    settings.GOOGLE_GENAI_USE_VERTEXAI = False
    clear_client_cache()
    yield server
    clear_client_cache()


def test_check_with_google_lists_what_the_key_sees_and_flags_the_missing(admin_client, google_at, nano):
    google_at.retire_model(nano.provider_model_id)
    changelist = admin_client.get(url("changelist")).content.decode()
    assert url("check_with_google") in changelist  # the button above the list
    response = admin_client.get(url("check_with_google"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="backend-gemini"' in html and 'id="backend-vertex"' in html
    assert "<code>gemini-3.1-flash-lite-image</code>" in html  # seen by the key
    missing = [row for row in html.split("<tr") if 'class="' in row and " missing" in row.split(">")[0]]
    flagged = {row.split('data-model-id="')[1].split('"')[0] for row in missing}
    assert nano.provider_model_id in flagged and "imagen-4.0-generate-001" in flagged
    assert "gemini-3.1-flash-lite-image" not in flagged
    assert 'id="missing-summary"' in html


def test_check_with_google_shows_googles_error_without_the_key(admin_client, google_at, settings):
    key = "AIza" + "K" * 35
    settings.GOOGLE_API_KEY = settings.GOOGLE_VERTEX_API_KEY = key
    google_at.expected_api_key = "the-right-key"
    response = admin_client.get(url("check_with_google"))
    html = response.content.decode()
    assert response.status_code == 200 and "API key not valid" in html and "google-error" in html
    assert key not in html


def test_check_with_google_needs_the_change_permission(client, django_user_model, google_at):
    viewer = django_user_model.objects.create_user("viewer-lc", password="x", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_aimodel"))
    client.force_login(viewer)
    assert client.get(url("check_with_google")).status_code == 403
    assert google_at.requests_for("listModels") == []


# --- the dashboard's banner --------------------------------------------------------------------------------------
def test_the_dashboard_names_models_near_or_past_their_shutdown(admin_client, nano, lite, veo):
    today = timezone.localdate()
    AIModel.objects.filter(pk=lite.pk).update(shutdown_date=today - timedelta(days=2))  # no successor: red
    AIModel.objects.filter(pk=nano.pk).update(shutdown_date=today + timedelta(days=10), successor=None)
    AIModel.objects.filter(pk=veo.pk).update(shutdown_date=today + timedelta(days=60))  # too far
    AIModel.objects.filter(slug="nano-banana").update(shutdown_date=today + timedelta(days=3))  # inactive
    response = admin_client.get(reverse("admin:index"))
    html = response.content.decode()
    banner = html.split('id="shutdown-banner"')[1].split("</section>")[0]
    danger = banner.split("shutdown-danger")[1].split("</div>")[0]
    assert "Nano Banana 2 Lite" in danger and "has no successor" in danger and "past its shutdown date" in danger
    soon = banner.split("shutdown-soon")[1].split("</div>")[0]
    assert "Nano Banana 2.1" in soon and "in 10 days" in soon
    assert url("change", lite.pk) in banner
    assert "Veo" not in banner and "gemini-3.1-flash-image" not in banner
    rows = response.context["shutdowns"]
    assert [row["danger"] for row in rows] == [True, False]


def test_no_banner_without_a_shutdown_in_sight(admin_client):
    assert 'id="shutdown-banner"' not in admin_client.get(reverse("admin:index")).content.decode()


def test_the_banner_in_russian(admin_client, settings, lite):
    from django.utils import translation

    AIModel.objects.filter(pk=lite.pk).update(shutdown_date=timezone.localdate() - timedelta(days=1))
    settings.LANGUAGE_CODE = "ru"
    with translation.override("ru"):
        html = admin_client.get(reverse("admin:index")).content.decode()
    banner = html.split('id="shutdown-banner"')[1]
    assert "преемницы нет" in banner and "дата отключения" in banner


def test_check_with_google_without_credentials_says_so(admin_client, settings):
    settings.GOOGLE_API_KEY = settings.GOOGLE_VERTEX_API_KEY = settings.GOOGLE_CLOUD_PROJECT = ""
    html = admin_client.get(url("check_with_google")).content.decode()
    assert 'id="no-backend"' in html and "GOOGLE_API_KEY" in html
