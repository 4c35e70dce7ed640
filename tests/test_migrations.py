from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from botapp.models import AIModel, Promocode, TopUpPackage


@pytest.mark.django_db(transaction=True)
def test_migrate_zero_and_back():
    call_command("migrate", "botapp", "zero", verbosity=0)
    assert "botapp_aimodel" not in connection.introspection.table_names()
    call_command("migrate", "botapp", verbosity=0)
    assert AIModel.objects.count() == 8


@pytest.mark.django_db(transaction=True)
def test_data_migration_is_reversible():
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes("botapp")
    try:
        executor.migrate([("botapp", "0002_aimodel_promocode_transaction_userbalance_and_more")])
        assert "botapp_aimodel" in connection.introspection.table_names()
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM botapp_aimodel")
            assert cursor.fetchone()[0] == 0
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate([("botapp", "0003_add_initial_ai_models")])
        assert AIModel.objects.count() == 4
    finally:  # the later migrations too, for the tests that run after this one
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(latest)


@pytest.mark.django_db
def test_initial_data():
    models = {m.slug: (m.price, m.is_active, m.kind) for m in AIModel.objects.all()}
    assert models == {
        "nano-banana": (1.5, False, "image"),  # Nano Banana 2: retired, its successor 2.1
        "nano-banana-2-1": (1.5, True, "image"),
        "nano-banana-2-lite": (0.75, True, "image"),
        "nano-banana-pro": (4, False, "image"),
        "gemini-omni-flash": (8, True, "video"),
        "imagen": (3, False, "image"),
        "veo-3-1-fast": (19, True, "video"),
        "veo-3-1-pro": (49, False, "video"),
    }
    assert Promocode.objects.get(code="WELCOME2025").value == 10
    first50 = Promocode.objects.get(code="FIRST50")
    assert (first50.kind, first50.value, first50.first_topup_only) == ("topup_discount", 50, True)
    packages = list(TopUpPackage.objects.filter(is_active=True).order_by("tokens"))
    per_token = [p.price_stars / p.tokens for p in packages]
    assert len(packages) >= 3 and per_token == sorted(per_token, reverse=True)


@pytest.mark.django_db
def test_no_missing_migrations():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def _before_0017(**lookup) -> AIModel:
    """A row read with only the columns older migrations know (the model class has the newer ones too)."""
    fields = ("slug", "name", "kind", "provider_model_id", "price", "is_active", "capabilities", "pricing")
    return AIModel.objects.only(*fields).get(**lookup)


def _migrate(target: str) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([("botapp", target)])


@pytest.mark.django_db(transaction=True)
def test_catalogue_2026_forward_and_back_leaves_an_edited_model_alone():
    """0016 moves the seeded models to Google's current ids and capabilities, adds Nano Banana Pro
    inactive, and leaves a model the operator edited as it is; backwards restores the seed."""
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes("botapp")
    try:
        _migrate("0015_catalogue_2026")
        with connection.cursor() as cursor:  # the state 0015 knows: no Nano Banana Pro yet
            cursor.execute("DELETE FROM botapp_aimodel WHERE slug = 'nano-banana-pro'")
            # The operator changed Veo 3.1 Pro's model id before the upgrade.
            cursor.execute(
                "UPDATE botapp_aimodel SET provider_model_id = 'veo-3.1-generate-preview' WHERE slug = 'veo-3-1-pro'"
            )
        _migrate("0016_catalogue_2026_data")
        nano = _before_0017(slug="nano-banana")
        assert (nano.provider_model_id, nano.name) == ("gemini-3.1-flash-image", "Nano Banana 2")
        assert nano.caps.resolutions == ("1K", "2K", "4K") and nano.caps.max_variants == 4
        assert {"1:8", "8:1", "1:4", "4:1"} <= set(nano.caps.aspect_ratios)
        assert nano.price == Decimal("1.50") and nano.is_active
        assert nano.quote({"resolution": "4K"}).total == Decimal("3.38")  # 1.50 × 2.25, half up
        fast = _before_0017(slug="veo-3-1-fast")
        assert fast.caps.last_frame and fast.caps.extension and fast.caps.max_reference_images == 3
        assert "4k" in fast.caps.resolutions and fast.caps.audio
        assert fast.quote({"duration_seconds": 8, "resolution": "720p"}).total == Decimal("19.00")  # unchanged
        assert fast.quote({"duration_seconds": 4, "resolution": "720p"}).total == Decimal("9.50")
        pro = _before_0017(slug="veo-3-1-pro")
        assert pro.provider_model_id == "veo-3.1-generate-preview"  # the operator's edit survives
        assert pro.pricing == {} and "4k" not in pro.caps.resolutions
        new = _before_0017(slug="nano-banana-pro")
        assert (new.provider_model_id, new.is_active) == ("gemini-3-pro-image", False)

        _migrate("0015_catalogue_2026")
        nano = _before_0017(slug="nano-banana")
        assert (nano.provider_model_id, nano.name, nano.pricing) == ("gemini-2.5-flash-image", "Nano Banana", {})
        assert nano.caps.max_input_images == 3
        assert _before_0017(slug="veo-3-1-pro").provider_model_id == "veo-3.1-generate-preview"
        assert not AIModel.objects.filter(slug="nano-banana-pro").exists()
    finally:  # back to the seed's Veo 3.1 Pro, then the latest state as every other test sees it
        _migrate("0015_catalogue_2026")
        AIModel.objects.filter(slug="veo-3-1-pro").update(provider_model_id="veo-3.1-generate-001")
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(latest)


@pytest.mark.django_db(transaction=True)
def test_catalogue_december_2026_forward_and_back_leaves_an_edited_model_alone():
    """0018 makes Nano Banana 2.1 the active Nano Banana with the operator's price, retires Nano Banana 2 and
    Imagen to it, adds Nano Banana 2 Lite and Gemini Omni Flash; an operator-edited Imagen is left alone;
    backwards deletes what it added (unused) and puts Nano Banana 2 back."""
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes("botapp")
    try:
        _migrate("0017_model_lifecycle")
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM botapp_aimodel WHERE slug IN "
                           "('nano-banana-2-1', 'nano-banana-2-lite', 'gemini-omni-flash')")
            # The operator repriced Nano Banana 2 and pointed Imagen at an id of their own before the upgrade.
            cursor.execute(
                "UPDATE botapp_aimodel SET price = 1.80, status = 'ga', is_active = TRUE, successor_id = NULL "
                "WHERE slug = 'nano-banana'"
            )
            cursor.execute("UPDATE botapp_aimodel SET provider_model_id = 'imagen-custom', status = 'ga', "
                           "successor_id = NULL, shutdown_date = NULL WHERE slug = 'imagen'")
        _migrate("0018_catalogue_december_2026")
        nb21 = AIModel.objects.get(slug="nano-banana-2-1")
        assert (nb21.provider_model_id, nb21.is_active, nb21.status) == ("gemini-nano-banana-2.1", True, "ga")
        assert nb21.price == Decimal("1.80")  # the operator's price carried over
        assert nb21.caps.thinking_levels == ("minimal", "medium", "high")
        assert nb21.caps.draft.model == "nano-banana-2-lite"
        assert nb21.unit_cost_usd({"resolution": "4K"}) == Decimal("0.151")
        nb2 = AIModel.objects.get(slug="nano-banana")
        assert (nb2.is_active, nb2.status, nb2.successor_id) == (False, "retired", nb21.pk)
        assert str(nb2.deprecation_date) == "2026-10-06"
        imagen = AIModel.objects.get(slug="imagen")
        assert (imagen.provider_model_id, imagen.status, imagen.successor_id) == ("imagen-custom", "ga", None)
        lite = AIModel.objects.get(slug="nano-banana-2-lite")
        assert (lite.provider_model_id, lite.is_active, lite.caps.resolutions) == (
            "gemini-3.1-flash-lite-image", True, ("1K",))
        omni = AIModel.objects.get(slug="gemini-omni-flash")
        assert (omni.provider, omni.provider_model_id, omni.is_active) == ("google-omni", "gemini-omni-1.2-flash", True)
        assert omni.caps.edit and omni.caps.max_reference_images == 6 and omni.caps.max_video_seconds == 30
        assert omni.quote({"duration_seconds": 8, "resolution": "720p"}).total == Decimal("8.00")
        assert omni.quote({"duration_seconds": 8, "resolution": "360p"}).total == Decimal("2.80")
        assert not AIModel.objects.filter(is_active=True, status="retired").exists()

        _migrate("0017_model_lifecycle")
        nb2 = AIModel.objects.get(slug="nano-banana")
        assert (nb2.is_active, nb2.status, nb2.price) == (True, "ga", Decimal("1.80"))
        added = ["nano-banana-2-1", "nano-banana-2-lite", "gemini-omni-flash"]
        assert not AIModel.objects.filter(slug__in=added).exists()
        assert AIModel.objects.get(slug="imagen").provider_model_id == "imagen-custom"
    finally:
        AIModel.objects.filter(slug="imagen").update(provider_model_id="imagen-4.0-generate-001")
        AIModel.objects.filter(slug="nano-banana").update(price=Decimal("1.50"))
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(latest)
